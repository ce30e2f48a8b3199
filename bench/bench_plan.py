"""`hbsdeploy plan` over many partners in two environments against the portal emulator with added latency.

Each environment is one emulator process (mutual TLS, a bearer token, `--latency-ms`) on 127.0.0.1, so that the
server's work does not share the client's interpreter. The plan reads one listing per partner and environment.

    ideal = requests x latency / parallelism     (what the added latency alone costs with perfect parallelism)

Measured, in one run:
  * hbsdeploy, library: `make_plan` per environment (render + parallel reads + diff), split into start-up (load and
    validate the partner files, render) and portal reads; requests counted by HttpPortal.request_count;
  * hbsdeploy, CLI: `python -m hbsdeploy plan --env E` as whole processes (interpreter start-up included);
  * peer "serial": the same listings one after another with a plain requests.Session, as a serial planner
    (octoDNS-style: one provider read after the other) would do them;
  * peer "floor": the same listings with 8 threads on one plain requests.Session, no validation: the best a
    thread-pool client can do here.

Target (issue 5): portal reads within 1.5x of the ideal (plus start-up).

    python bench/bench_plan.py [--partners 500] [--latency-ms 20] [--parallelism 8] [--runs 3] [--json]

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
def emulators(folder: Path, tls: Tls, partner_ids: Sequence[str], latency_ms: float) -> Iterator[dict[str, str]]:
    """One emulator process per environment; their base URLs."""
    processes: list[subprocess.Popen[str]] = []
    urls: dict[str, str] = {}
    env = {**os.environ, TOKEN_ENV: TOKEN, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        for name in ENVIRONMENTS:
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


def library_plan(repo: Path, parallelism: int) -> dict[str, float]:
    """make_plan for each environment in this process: start-up (load, validate, render) and reads timed apart."""
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
    requests = 0
    changes = 0
    for name in ENVIRONMENTS:
        portal = HttpPortal(config.environment(name))
        try:
            began = time.perf_counter()
            current = read_current(portal, (d.partner_id for d in desired[name]), parallelism)
            reads += time.perf_counter() - began
            requests += portal.request_count
        finally:
            portal.close()
        changes += len(compute_plan(name, desired[name], current).changes)
    return {"startup_s": startup, "reads_s": reads, "wall_s": time.perf_counter() - started,
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


def peer_serial(urls: dict[str, str], tls: Tls, partner_ids: Sequence[str]) -> tuple[float, int]:
    """Every listing one after another on one plain requests.Session."""
    session = _session(tls)
    count = 0
    started = time.perf_counter()
    for name in ENVIRONMENTS:
        for path in _paths(partner_ids):
            response = session.get(urls[name] + path, **_tls_options(tls))
            response.raise_for_status()
            response.json()
            count += 1
    session.close()
    return time.perf_counter() - started, count


def peer_floor(urls: dict[str, str], tls: Tls, partner_ids: Sequence[str], parallelism: int) -> tuple[float, int]:
    """Every listing with `parallelism` threads on one plain requests.Session: no validation, no diff."""
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
    parser.add_argument("--partners", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3, help="Runs of each measurement; the median is reported.")
    parser.add_argument("--skip-serial", action="store_true", help="Leave out the serial peer (slowest part).")
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
            library_plan(repo, args.parallelism)  # warm-up: imports, template compilation, emulator caches
            library = [library_plan(repo, args.parallelism) for _ in range(args.runs)]
            cli = [cli_plan(repo, args.parallelism) for _ in range(args.runs)]
            floor = [peer_floor(urls, tls, partner_ids, args.parallelism) for _ in range(args.runs)]
            serial = None if args.skip_serial else peer_serial(urls, tls, partner_ids)

    def median(key: str) -> float:
        return statistics.median(run[key] for run in library)

    requests_made = int(library[0]["requests"])
    ideal = requests_made * latency / args.parallelism
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
                   f"Python {platform.python_version()}",
        "partners": args.partners, "environments": len(ENVIRONMENTS), "latency_ms": args.latency_ms,
        "parallelism": args.parallelism, "requests": requests_made, "changes": int(library[0]["changes"]),
        "ideal_s": ideal,
        "library_startup_s": median("startup_s"), "library_reads_s": median("reads_s"),
        "library_wall_s": median("wall_s"),
        "cli_wall_s": statistics.median(cli),
        "floor_s": statistics.median(t for t, _ in floor),
    }
    figures["reads_ratio"] = figures["library_reads_s"] / ideal
    figures["wall_ratio_vs_ideal_plus_startup"] = figures["library_wall_s"] / (ideal + figures["library_startup_s"])
    figures["floor_ratio"] = figures["floor_s"] / ideal
    figures["reads_vs_floor"] = figures["library_reads_s"] / figures["floor_s"]
    if serial is not None:
        figures["serial_s"] = serial[0]
        figures["serial_vs_reads"] = serial[0] / figures["library_reads_s"]
        figures["serial_vs_cli"] = serial[0] / figures["cli_wall_s"]
    figures["target_met"] = figures["reads_ratio"] <= TARGET_RATIO

    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
        return 0
    print(f"machine: {figures['machine']}")
    print(f"{args.partners} partners x {len(ENVIRONMENTS)} environments, emulator latency {args.latency_ms:g} ms, "
          f"parallelism {args.parallelism}, median of {args.runs}")
    print(f"requests: {requests_made} (one listing per partner and environment); {figures['changes']} changes")
    print(f"ideal (requests x latency / parallelism): {ideal:.2f} s")
    print(f"hbsdeploy reads:    {figures['library_reads_s']:.2f} s  = {figures['reads_ratio']:.2f}x ideal "
          f"(target <= {TARGET_RATIO}x: {'met' if figures['target_met'] else 'MISSED'})")
    print(f"hbsdeploy start-up: {figures['library_startup_s']:.2f} s  (load + validate + render "
          f"{args.partners} partners for {len(ENVIRONMENTS)} environments)")
    print(f"hbsdeploy library:  {figures['library_wall_s']:.2f} s  = "
          f"{figures['wall_ratio_vs_ideal_plus_startup']:.2f}x (ideal + start-up)")
    print(f"hbsdeploy CLI:      {figures['cli_wall_s']:.2f} s  (two `hbsdeploy plan` processes)")
    print(f"peer floor:         {figures['floor_s']:.2f} s  = {figures['floor_ratio']:.2f}x ideal "
          f"(plain requests, {args.parallelism} threads; hbsdeploy reads = {figures['reads_vs_floor']:.2f}x this)")
    if serial is not None:
        print(f"peer serial:        {figures['serial_s']:.2f} s  (plain requests, one at a time; "
              f"{figures['serial_vs_reads']:.1f}x hbsdeploy reads, {figures['serial_vs_cli']:.1f}x hbsdeploy CLI)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
