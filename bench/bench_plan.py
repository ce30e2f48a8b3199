"""`hbsdeploy plan` over many partners in two environments against the portal emulator with added latency.

Each environment is one emulator process (mutual TLS, a bearer token, `--latency-ms`) on 127.0.0.1, so that the
server's work does not share the client's interpreter. The plan reads the paged partners listing (GET /v1/partners,
1,000 partners a page): 2 requests per environment for 2,000 partners.

    ideal = requests x latency / parallelism     (what the added latency alone costs with perfect parallelism)

Measured, in one run, against the same emulators:
  * hbsdeploy, library: `read_current` per environment through the paged listing (bulk), and through one listing
    per partner at `--parallelism` (how plan read before the listing existed), timed apart from start-up (load,
    validate, render); requests counted by HttpPortal.request_count;
  * hbsdeploy, CLI: `python -m hbsdeploy plan --env E` as whole processes (interpreter start-up included);
  * peer "pages": the same page requests on one plain requests.Session, bodies parsed (json.loads), nothing checked:
    the best a client can do for these requests here;
  * peer "floor": the per-partner listings with `--parallelism` threads on one plain requests.Session.

Targets (issue 16): hbsdeploy's reads within 1.5x of max(ideal, peer "pages"), and at least 3x faster than the
per-partner listing in the same run.

    python bench/bench_plan.py [--partners 2000] [--latency-ms 20] [--parallelism 8] [--runs 3] [--json]

Needs trustme (test extra) for the TLS material; everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, operator_id, partner_text  # noqa: E402

TOKEN_ENV = "HBSDEPLOY_BENCH_TOKEN"
TOKEN = "bench-token-not-a-secret"
ENVIRONMENTS = ("qa", "prod")
TARGET_RATIO = 1.5
TARGET_SPEED_UP = 3.0

QA_AND_PROD = ("  qa:\n    service_types:\n      authorization:\n"
               "        service_url: https://oicp-qa.partner{index}.example.com\n  prod:\n")


@dataclass(frozen=True)
class Tls:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls(folder: Path) -> Tls:
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    for name, leaf in (("server", ca.issue_cert("127.0.0.1")), ("client", ca.issue_cert("client.example.com"))):
        leaf.cert_chain_pems[0].write_to_path(str(folder / f"{name}.pem"))
        leaf.private_key_pem.write_to_path(str(folder / f"{name}.key"))
    return Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "client.pem",
               folder / "client.key")


def make_repository(folder: Path, partners: int, urls: dict[str, str], tls: Tls, parallelism: int) -> list[str]:
    """Partner files deployed to both environments, and a config pointing each environment at its emulator."""
    (folder / "partners").mkdir(parents=True)
    shutil.copytree(REPO / "templates", folder / "templates")
    ids = []
    for index in range(partners):
        ids.append(operator_id(index))
        text = partner_text(index, QA_AND_PROD)
        (folder / "partners" / f"partner-{index:05d}.yaml").write_text(text, encoding="utf-8")
    lines = ["default_environment: qa", "environments:"]
    for name in ENVIRONMENTS:
        lines += [f"  {name}:", f"    portal: {urls[name]}", f"    token_env: {TOKEN_ENV}",
                  f"    client_cert: {tls.client_cert}", f"    client_key: {tls.client_key}",
                  f"    ca_bundle: {tls.ca}"]
    lines += ["apply:", f"  parallelism: {parallelism}"]
    (folder / "hbsdeploy.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


@contextmanager
def emulators(folder: Path, tls: Tls, partner_ids: Sequence[str], latency_ms: float,
              environments: Sequence[str] = ENVIRONMENTS) -> Iterator[dict[str, str]]:
    """One emulator process per environment; their base URLs."""
    processes: list[subprocess.Popen[str]] = []
    urls: dict[str, str] = {}
    env = {**os.environ, TOKEN_ENV: TOKEN, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        for name in environments:
            command = [sys.executable, "-m", "hbsdeploy", "portal", "serve", "--port", "0",
                       "--state", str(folder / f"{name}.sqlite3"), "--tls-cert", str(tls.server_cert),
                       "--tls-key", str(tls.server_key), "--client-ca", str(tls.ca), "--token-env", TOKEN_ENV,
                       "--latency-ms", str(latency_ms)]
            for partner_id in partner_ids:
                command += ["--partner", partner_id]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
            processes.append(process)
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("serving on "):
                raise SystemExit(f"the emulator did not start: {line!r}")
            urls[name] = line.split("serving on ", 1)[1].strip()
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def library_plan(repo: Path, parallelism: int, bulk: bool) -> dict[str, float]:
    """Load, validate and render once, then read each environment (paged listing when `bulk`, else one listing per
    partner) and diff: start-up and reads timed apart."""
    from hbsdeploy.check.project import load_project
    from hbsdeploy.load.config import load_config
    from hbsdeploy.plan.build import desired_payloads, read_current
    from hbsdeploy.plan.model import compute_plan
    from hbsdeploy.portal.http import HttpPortal
    from hbsdeploy.render.payloads import Renderer

    started = time.perf_counter()
    config = load_config(repo / "hbsdeploy.yaml")
    project = load_project(config)
    renderer = Renderer(config)
    desired = {name: desired_payloads(project, config.environment(name), renderer) for name in ENVIRONMENTS}
    startup = time.perf_counter() - started
    reads = 0.0
    cpu = 0.0
    requests = 0
    changes = 0
    for name in ENVIRONMENTS:
        portal = HttpPortal(config.environment(name), pool_size=parallelism)
        try:
            began, began_cpu = time.perf_counter(), time.process_time()
            current = read_current(portal, (d.partner_id for d in desired[name]), parallelism, bulk=bulk)
            reads += time.perf_counter() - began
            cpu += time.process_time() - began_cpu
            requests += portal.request_count
        finally:
            portal.close()
        changes += len(compute_plan(name, desired[name], current).changes)
    return {"startup_s": startup, "reads_s": reads, "reads_cpu_s": cpu, "wall_s": time.perf_counter() - started,
            "requests": requests, "changes": changes}


def cli_plan(repo: Path, parallelism: int) -> float:
    """Whole-process `hbsdeploy plan` for each environment, one after the other."""
    env = {**os.environ, TOKEN_ENV: TOKEN, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    for name in ENVIRONMENTS:
        done = subprocess.run([sys.executable, "-m", "hbsdeploy", "plan", "--env", name, "--parallelism",
                               str(parallelism), "--detailed-exitcode"], cwd=repo, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode not in (0, 2):
            raise SystemExit(f"hbsdeploy plan failed: {done.stderr}")
    return time.perf_counter() - started


def _session(tls: Tls) -> Any:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    return session


def _tls_options(tls: Tls) -> dict[str, Any]:
    # per request: a session's verify loses to $REQUESTS_CA_BUNDLE (requests merges the environment over it)
    return {"verify": str(tls.ca), "cert": (str(tls.client_cert), str(tls.client_key)), "timeout": 30}


def _paths(partner_ids: Sequence[str]) -> list[str]:
    from hbsdeploy.portal.contract import service_types_path

    return [service_types_path(pid) for pid in partner_ids]


def peer_pages(urls: dict[str, str], tls: Tls) -> tuple[float, int]:
    """The paged listing of each environment on one plain requests.Session: bodies parsed, nothing checked."""
    from hbsdeploy.portal.contract import MAX_PAGE_SIZE, partners_page_path

    session = _session(tls)
    count = 0
    started = time.perf_counter()
    for name in ENVIRONMENTS:
        token = None
        while True:
            response = session.get(urls[name] + partners_page_path(MAX_PAGE_SIZE, token), **_tls_options(tls))
            response.raise_for_status()
            body = json.loads(response.content)
            count += 1
            token = body.get("next_page_token")
            if not token:
                break
    session.close()
    return time.perf_counter() - started, count


def peer_floor(urls: dict[str, str], tls: Tls, partner_ids: Sequence[str], parallelism: int) -> tuple[float, int]:
    """Every per-partner listing with `parallelism` threads on one plain requests.Session: no validation, no diff."""
    import requests

    session = _session(tls)
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(10, parallelism))
    session.mount("https://", adapter)

    def get(url: str) -> None:
        response = session.get(url, **_tls_options(tls))
        response.raise_for_status()
        response.json()

    all_urls = [urls[name] + path for name in ENVIRONMENTS for path in _paths(partner_ids)]
    started = time.perf_counter()
    for name in ENVIRONMENTS:
        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            list(pool.map(get, [u for u in all_urls if u.startswith(urls[name])]))
    session.close()
    return time.perf_counter() - started, len(all_urls)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3, help="Runs of each measurement; the median is reported.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    os.environ[TOKEN_ENV] = TOKEN
    latency = args.latency_ms / 1000

    with tempfile.TemporaryDirectory(prefix="bench-plan-") as temp:
        folder = Path(temp)
        tls = make_tls(folder / "tls")
        partner_ids = [operator_id(i) for i in range(args.partners)]
        with emulators(folder, tls, partner_ids, args.latency_ms) as urls:
            repo = folder / "repo"
            make_repository(repo, args.partners, urls, tls, args.parallelism)
            library_plan(repo, args.parallelism, True)  # warm-up: imports, template compilation, emulator caches
            bulk, each, cli, pages, floor = [], [], [], [], []
            for _ in range(args.runs):  # interleaved, so that a change in the machine's load hits every figure
                bulk.append(library_plan(repo, args.parallelism, True))
                each.append(library_plan(repo, args.parallelism, False))
                cli.append(cli_plan(repo, args.parallelism))
                pages.append(peer_pages(urls, tls))
                floor.append(peer_floor(urls, tls, partner_ids, args.parallelism))
            load = os.getloadavg()

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    requests_made = int(bulk[0]["requests"])
    ideal = requests_made * latency / args.parallelism
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
                   f"Python {platform.python_version()}",
        "load_average": [round(x, 2) for x in load],
        "partners": args.partners, "environments": len(ENVIRONMENTS), "latency_ms": args.latency_ms,
        "parallelism": args.parallelism, "requests": requests_made, "changes": int(bulk[0]["changes"]),
        "ideal_s": ideal,
        "startup_s": median(bulk, "startup_s"),
        "reads_s": median(bulk, "reads_s"), "reads_cpu_s": median(bulk, "reads_cpu_s"),
        "per_partner_requests": int(each[0]["requests"]), "per_partner_reads_s": median(each, "reads_s"),
        "per_partner_reads_cpu_s": median(each, "reads_cpu_s"),
        "per_partner_ideal_s": int(each[0]["requests"]) * latency / args.parallelism,
        "library_wall_s": median(bulk, "wall_s"), "per_partner_library_wall_s": median(each, "wall_s"),
        "cli_wall_s": statistics.median(cli),
        "peer_pages_s": statistics.median(t for t, _ in pages), "peer_pages_requests": pages[0][1],
        "peer_floor_s": statistics.median(t for t, _ in floor),
    }
    reference = max(ideal, figures["peer_pages_s"])
    figures["reads_vs_reference"] = figures["reads_s"] / reference
    figures["speed_up_vs_per_partner"] = figures["per_partner_reads_s"] / figures["reads_s"]
    figures["library_speed_up"] = figures["per_partner_library_wall_s"] / figures["library_wall_s"]
    figures["target_met"] = (figures["reads_vs_reference"] <= TARGET_RATIO
                             and figures["speed_up_vs_per_partner"] >= TARGET_SPEED_UP)

    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
        return 0 if figures["target_met"] else 1
    f = figures
    print(f"machine: {f['machine']}; load average {f['load_average']}")
    print(f"{args.partners} partners x {len(ENVIRONMENTS)} environments, emulator latency {args.latency_ms:g} ms, "
          f"parallelism {args.parallelism}, median of {args.runs}; {f['changes']} changes")
    print(f"paged listing: {requests_made} requests; ideal (requests x latency / parallelism) {ideal:.3f} s; "
          f"peer pages (plain requests, same {f['peer_pages_requests']} requests, bodies parsed) "
          f"{f['peer_pages_s']:.2f} s")
    print(f"hbsdeploy reads, paged:       {f['reads_s']:.2f} s ({f['reads_cpu_s']:.2f} CPU s) = "
          f"{f['reads_vs_reference']:.2f}x max(ideal, peer pages) (target <= {TARGET_RATIO}x)")
    print(f"hbsdeploy reads, per partner: {f['per_partner_reads_s']:.2f} s ({f['per_partner_reads_cpu_s']:.2f} CPU s), "
          f"{f['per_partner_requests']} requests, ideal {f['per_partner_ideal_s']:.2f} s; peer floor "
          f"{f['peer_floor_s']:.2f} s")
    print(f"speed-up of the reads: {f['speed_up_vs_per_partner']:.1f}x (target >= {TARGET_SPEED_UP}x)")
    print(f"start-up (load + validate + render {args.partners} partners, {len(ENVIRONMENTS)} environments): "
          f"{f['startup_s']:.2f} s")
    print(f"library, start-up + both environments: paged {f['library_wall_s']:.2f} s, per partner "
          f"{f['per_partner_library_wall_s']:.2f} s ({f['library_speed_up']:.1f}x)")
    print(f"hbsdeploy CLI (two `hbsdeploy plan` processes, paged): {f['cli_wall_s']:.2f} s")
    print(f"targets: {'met' if f['target_met'] else 'MISSED'}")
    return 0 if f["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
