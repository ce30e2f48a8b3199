"""`hbsdeploy render` of 1,000 partners in 2 environments (4,000 payloads) against a reasonable script that produces
the same bytes (bench/render_peer.py: templates compiled once, one compiled jsonschema validator), in one run.

Both run as whole processes with the same interpreter, alternately, after a warm-up each; their outputs are compared
byte for byte. Start-up (`hbsdeploy --version`, and the peer's imports alone) is measured too, so that the time
beyond start-up can be compared.

    python bench/bench_render.py [--partners 1000] [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HBSDEPLOY, REPO, machine, make_repository  # noqa: E402

PEER = [sys.executable, str(Path(__file__).resolve().parent / "render_peer.py")]
PEER_IMPORTS = [sys.executable, "-c", "import jinja2, jsonschema, yaml"]


def timed(command: Sequence[str], cwd: Path) -> tuple[float, bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, done.stdout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    commands = {"hbsdeploy render": [*HBSDEPLOY, "render"], "peer script": [*PEER, "."],
                "hbsdeploy --version": [*HBSDEPLOY, "--version"], "peer imports": PEER_IMPORTS}
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repository(Path(tmp) / "repo", args.partners)
        outputs = {name: timed(command, repo)[1] for name, command in commands.items()}  # warm-up (byte code)
        if outputs["hbsdeploy render"] != outputs["peer script"]:
            raise SystemExit("the peer's output differs from hbsdeploy render's")
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # alternately: the machine's load hits both alike
            for name, command in commands.items():
                times[name].append(timed(command, repo)[0])
        payloads = sum(len(types) for env in json.loads(outputs["peer script"]).values() for types in env.values())
    f: dict[str, Any] = {"machine": machine(), "load_average": [round(x, 2) for x in os.getloadavg()],
                         "partners": args.partners, "payloads": payloads, "runs": args.runs,
                         **{name: statistics.median(values) for name, values in times.items()}}
    f["hbsdeploy beyond start-up"] = f["hbsdeploy render"] - f["hbsdeploy --version"]
    f["peer beyond start-up"] = f["peer script"] - f["peer imports"]
    f["whole-process ratio"] = f["peer script"] / f["hbsdeploy render"]
    f["beyond start-up ratio"] = f["peer beyond start-up"] / f["hbsdeploy beyond start-up"]
    if args.json:
        print(json.dumps(f, indent=2))
        return 0
    print(f"machine: {f['machine']}; load average {f['load_average']}")
    print(f"{args.partners} partners, {payloads} payloads in 2 environments, median of {args.runs}, same bytes out")
    for name in ("hbsdeploy render", "peer script", "hbsdeploy --version", "peer imports",
                 "hbsdeploy beyond start-up", "peer beyond start-up"):
        print(f"  {name:28} {f[name]:7.3f} s")
    print(f"peer / hbsdeploy: {f['whole-process ratio']:.2f}x whole process, {f['beyond start-up ratio']:.2f}x beyond "
          "start-up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
