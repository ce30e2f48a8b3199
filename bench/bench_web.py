"""The web portal driver against the portal's UI replica, and the same plan through the HTTP emulator, in one run.

Two emulator processes on 127.0.0.1 with the same added latency: one serving the UI replica (`portal serve --ui`,
one user administering every partner account), one serving the API. For each, in this process:
  * read: `make_plan` of N partners x 2 service types (Authorization, Reservation) from an empty portal, cold (the
    web portal launches Chromium and logs in within it);
  * write: `apply_plan` of that plan: for the web portal, the 2 service types of the first --write-partners partners
    (the others were given their settings beforehand through the replica's API, untimed); for the HTTP emulator,
    all of them. Each web write is Edit, fill, Update Service Type, read back, two screenshots. The time per write is
    the apply's wall time divided by the writes made, at the portal's parallelism;
  * re-apply: a second plan and apply, which must make zero writes; the writes are counted in the emulator's
    access log (web: every form posted on the settings page, Update Service Type or Cancel; API: PUTs), not taken
    from hbsdeploy's own report.

Target (issue 11): reading 100 partners x 2 service types in under 60 s with the default parallelism (2 browser
contexts) on a 2-core machine.

    python bench/bench_web.py [--partners 100] [--write-partners 20] [--latency-ms 50] [--json]

Needs the web extra (Playwright) and a Chromium (/usr/bin/chromium or `browser:`); everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, operator_id, partner_text  # noqa: E402

PASSWORD_ENV = "HBSDEPLOY_BENCH_WEB_PASSWORD"
USER_ENV = "HBSDEPLOY_BENCH_WEB_USER"
PASSWORD = "bench-password-not-a-secret"
READ_TARGET_S = 60.0
QA_URL = "    service_types:\n      authorization:\n        service_url: https://oicp-qa.partner{index}.example.com\n"
# qa: the replica's UI; seed: the same replica's API (the same store), to set partners outside the write batch
# beforehand; api: the HTTP emulator.
ENVIRONMENTS = "  qa:\n" + QA_URL + "  seed:\n" + QA_URL + "  api:\n"


def users_file(folder: Path, ids: list[str]) -> Path:
    """The replica's users: one operator administering every partner account."""
    lines = ["accounts:"]
    lines += [f'  - id: "{pid}"\n    name: Bench Partner {index}' for index, pid in enumerate(ids)]
    lines += ["users:", "  - username: operator", f"    password_env: {PASSWORD_ENV}", "    role: administrator",
              "    accounts: [" + ", ".join(f'"{pid}"' for pid in ids) + "]"]
    path = folder / "users.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextmanager
def emulator(folder: Path, name: str, extra: list[str], latency_ms: float) -> Iterator[tuple[str, Path]]:
    """One `hbsdeploy portal serve` process; its URL and its access log."""
    log = folder / f"{name}-access.log"
    env = {**os.environ, PASSWORD_ENV: PASSWORD,
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "hbsdeploy", "portal", "serve", "--port", "0", "--state",
               str(folder / f"{name}.sqlite3"), "--latency-ms", str(latency_ms), *extra]
    with log.open("w", encoding="utf-8") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("serving on "):
                raise SystemExit(f"the emulator did not start: {line!r}; see {log}")
            yield line.split("serving on ", 1)[1].strip(), log
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def make_repository(folder: Path, partners: int, web_url: str, api_url: str) -> None:
    """Partner files in qa, seed and api; qa is the replica's UI, seed its API, api the HTTP emulator."""
    (folder / "partners").mkdir(parents=True)
    shutil.copytree(REPO / "templates", folder / "templates")
    for index in range(partners):
        (folder / "partners" / f"partner-{index:05d}.yaml").write_text(partner_text(index, ENVIRONMENTS),
                                                                        encoding="utf-8")
    (folder / "hbsdeploy.yaml").write_text(
        "default_environment: qa\nenvironments:\n"
        f"  qa:\n    portal: web\n    url: {web_url}\n    username_env: {USER_ENV}\n    password_env: {PASSWORD_ENV}\n"
        f"  seed:\n    portal: {web_url}\n  api:\n    portal: {api_url}\n", encoding="utf-8")


def seed(repo: Path, batch: int) -> None:
    """Through the replica's API, give every partner after the first `batch` its desired settings already: the web
    apply then writes the batch only (2 service types each), and its re-apply must write nothing."""
    from hbsdeploy.apply.run import apply_plan
    from hbsdeploy.check.project import load_project
    from hbsdeploy.load.config import load_config
    from hbsdeploy.plan.build import make_plan
    from hbsdeploy.plan.model import Plan
    from hbsdeploy.portal import open_portal

    config = load_config(repo / "hbsdeploy.yaml")
    env = config.environment("seed")
    portal = open_portal(env, parallelism=8)
    try:
        plan = make_plan(load_project(config, env), env, portal, 8)
        keep = sorted({change.partner_id for change in plan.changes})[:batch]
        rest = Plan(env.name, tuple(c for c in plan.changes if c.partner_id not in keep), plan.observed)
        apply_plan(rest, portal, audit_log(repo, "seed"), parallelism=8)
    finally:
        portal.close()


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and every live process below it (Playwright's driver, Chromium and
    its renderers): what the work costs, whatever else the machine runs. The emulators are separate processes and
    not counted."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    mine, total = os.getpid(), 0.0
    for pid, used in times.items():
        walk = pid
        while walk > 1 and walk != mine:
            walk = parents.get(walk, 0)
        total += used if walk == mine else 0.0
    return total


def writes_in(log: Path, pattern: str) -> int:
    """How many writes the emulator served (its access log: `address "METHOD path" status time`)."""
    return len(re.findall(pattern, log.read_text(encoding="utf-8")))


def audit_log(folder: Path, name: str) -> Any:
    from hbsdeploy.apply.audit import AuditLog

    return AuditLog(folder / f"audit-{name}.jsonl")


def run_portal(repo: Path, name: str, log: Path, write_pattern: str) -> dict[str, Any]:
    """Plan (cold), apply, plan and apply again, against one environment; the figures."""
    from hbsdeploy.apply.run import Status, apply_plan
    from hbsdeploy.check.project import load_project
    from hbsdeploy.load.config import load_config
    from hbsdeploy.portal import open_portal
    from hbsdeploy.render.payloads import Renderer

    config = load_config(repo / "hbsdeploy.yaml")
    env = config.environment(name)
    project = load_project(config, env)
    renderer = Renderer(config)
    parallelism = config.parallelism
    from hbsdeploy.plan.build import make_plan

    started, cpu = time.perf_counter(), cpu_seconds()
    portal = open_portal(env, parallelism=parallelism)
    try:
        plan = make_plan(project, env, portal, parallelism, renderer=renderer)
        read_s, read_cpu_s = time.perf_counter() - started, cpu_seconds() - cpu
        began = time.perf_counter()
        result = apply_plan(plan, portal, audit_log(repo, name), parallelism=parallelism)
        apply_s = time.perf_counter() - began
        applied = result.count(Status.APPLIED)
        if applied != len(plan.changes):
            failed = [r.message for r in result.results if r.status is not Status.APPLIED]
            raise SystemExit(f"{name}: {applied} of {len(plan.changes)} changes applied; first failure: {failed[:1]}")
        written = writes_in(log, write_pattern)
        began = time.perf_counter()
        again = make_plan(project, env, portal, parallelism, renderer=renderer)
        reread_s = time.perf_counter() - began
        second = apply_plan(again, portal, audit_log(repo, name), parallelism=parallelism)
        rewritten = writes_in(log, write_pattern) - written
    finally:
        portal.close()
    return {"service_types_read": len(plan.observed), "read_s": read_s, "read_cpu_s": read_cpu_s,
            "writes": written, "apply_s": apply_s,
            "s_per_write": apply_s / max(1, written), "reread_s": reread_s, "second_apply_changes": len(again.changes),
            "second_apply_results": len(second.results), "second_apply_writes": rewritten,
            "portal_parallelism": getattr(portal, "parallelism", parallelism)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--partners", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every page and API answer")
    parser.add_argument("--write-partners", type=int, default=20,
                        help="partners whose 2 service types the web apply writes (the others are set beforehand)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    os.environ[USER_ENV] = "operator"
    os.environ[PASSWORD_ENV] = PASSWORD
    ids = [operator_id(index) for index in range(args.partners)]
    with tempfile.TemporaryDirectory(prefix="hbsdeploy-bench-web-") as tmp:
        folder = Path(tmp)
        users = users_file(folder, ids)
        api_extra = [arg for pid in ids for arg in ("--partner", pid)]
        with emulator(folder, "web", ["--ui", "--ui-users", str(users)], args.latency_ms) as (web_url, web_log), \
                emulator(folder, "api", api_extra, args.latency_ms) as (api_url, api_log):
            repo = folder / "repo"
            make_repository(repo, args.partners, web_url, api_url)
            seed(repo, args.write_partners)
            web = run_portal(repo, "qa", web_log, r'"POST /administration/service-type-settings"')
            api = run_portal(repo, "api", api_log, r'"PUT /v1/')
    figures = {"machine": machine(), "partners": args.partners, "latency_ms": args.latency_ms, "web": web,
               "api": api, "read_ratio": web["read_s"] / api["read_s"],
               "write_ratio": web["s_per_write"] / api["s_per_write"],
               "read_target_met": web["read_s"] < READ_TARGET_S if args.partners >= 100 else None,
               "load_average_1min_before_after": [load_before, os.getloadavg()[0]]}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"machine: {figures['machine']}; load average (1 min) {load_before:.1f} before, "
              f"{figures['load_average_1min_before_after'][1]:.1f} after")
        print(f"{args.partners} partners x 2 service types, {args.latency_ms:g} ms added per page / API answer")
        for label, row in (("web (replica, Chromium)", web), ("HTTP emulator", api)):
            print(f"  {label}: read {row['service_types_read']} in {row['read_s']:.1f} s "
                  f"({row['read_cpu_s']:.1f} CPU s, parallelism {row['portal_parallelism']}), "
                  f"{row['writes']} writes in {row['apply_s']:.1f} s "
                  f"= {row['s_per_write']:.2f} s per write, re-plan {row['reread_s']:.1f} s, second apply: "
                  f"{row['second_apply_changes']} changes, {row['second_apply_writes']} writes at the portal")
        print(f"  web / HTTP: reads {figures['read_ratio']:.0f}x, per write {figures['write_ratio']:.0f}x")
        verdict = {True: "met", False: "MISSED", None: "not measured (fewer than 100 partners)"}[
            figures["read_target_met"]]
        print(f"  target: read 100 x 2 in under {READ_TARGET_S:g} s with the default parallelism: {verdict}")
    zero = web["second_apply_writes"] == 0 and api["second_apply_writes"] == 0
    return 0 if figures["read_target_met"] is not False and zero else 1


if __name__ == "__main__":
    sys.exit(main())
