"""Render 1,000 partners in 2 environments (4,000 payloads): time beyond start-up, against a naive baseline.

The baseline is what an operator's script would do without hbsdeploy: load each file with yaml.safe_load and render
each payload with a freshly compiled jinja2.Template, then json.loads and jsonschema-validate it. It runs in the same
process run as a peer so both are measured on the same machine at the same time.

    python bench/bench_render.py [--partners 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HBSDEPLOY, REPO, make_repository, median_seconds  # noqa: E402


def naive_render(repo: Path) -> int:
    import jinja2
    import jsonschema
    import yaml

    schema = json.loads((REPO / "schemas" / "portal-payload.schema.json").read_text())
    loader = jinja2.FileSystemLoader(str(repo / "templates"))
    count = 0
    for path in sorted((repo / "partners").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for env in ("sandbox", "qa"):
            overrides = ((data["environments"].get(env) or {}).get("service_types") or {})
            for name, settings in data["service_types"].items():
                merged = {"broadcast_request": False, "certificate": "hubject", "certificate_sha256": None,
                          **settings, **overrides.get(name, {})}
                environment = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined)
                text = environment.get_template(f"{name}.json.j2").render(settings=merged)
                jsonschema.validate(json.loads(text), schema)
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partners", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repository(Path(tmp) / "repo", args.partners)
        startup = median_seconds([*HBSDEPLOY, "--version"], args.runs, cwd=repo)
        render = median_seconds([*HBSDEPLOY, "render", "--env", "sandbox"], args.runs, cwd=repo)
        render_two = median_seconds([*HBSDEPLOY, "render"], args.runs, cwd=repo)
        started = time.perf_counter()
        payloads = naive_render(repo)
        naive = time.perf_counter() - started
    beyond = render_two - startup
    print(f"partners: {args.partners}, payloads in 2 environments: {payloads}, runs: {args.runs} (median)")
    print(f"{'what':45} {'seconds':>8}")
    print(f"{'hbsdeploy --version (start-up)':45} {startup:8.3f}")
    print(f"{'hbsdeploy render --env sandbox (1 env)':45} {render:8.3f}")
    print(f"{'hbsdeploy render (2 environments)':45} {render_two:8.3f}")
    print(f"{'  of which beyond start-up':45} {beyond:8.3f}   target < 1.000")
    print(f"{'naive script (compile per payload), in-process':45} {naive:8.3f}")
    print(f"ratio naive / hbsdeploy beyond start-up: {naive / beyond:.1f}x")


if __name__ == "__main__":
    main()
