"""Requests and time of `apply` against the portal emulator (20 ms of added latency), counted by the emulator.

In one run, on a fresh emulator each: plan and apply N partners with 2 changes each the way hbsdeploy does now
(the paged listing, one PUT per change verified from its answer, one batched read-back), the same through a saved
plan (freshness check first), a re-apply (must write nothing), and the request pattern before issue 16 replayed
with the same client (one listing per partner, then per change a PUT and a GET to read it back).

    python bench/bench_apply.py [--partners 100] [--latency-ms 20] [--parallelism 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, operator_id, partner_text  # noqa: E402

QA = "  qa:\n"


def run(folder: Path, partners: int, latency_ms: float, parallelism: int, how: str) -> dict[str, Any]:
    from hbsdeploy.apply.audit import AuditLog
    from hbsdeploy.apply.run import Status, apply_plan, check_fresh
    from hbsdeploy.check.project import load_project
    from hbsdeploy.load.config import load_config
    from hbsdeploy.plan.build import make_plan
    from hbsdeploy.portal.emulator import serve
    from hbsdeploy.portal.http import HttpPortal

    ids = [operator_id(i) for i in range(partners)]
    handle = serve(folder / f"{how}.sqlite3", latency_ms=latency_ms, partners=ids, log_stream=None)
    try:
        repo = folder / f"repo-{how}"
        (repo / "partners").mkdir(parents=True)
        os.symlink(REPO / "templates", repo / "templates")
        for index in range(partners):
            (repo / "partners" / f"p{index:05d}.yaml").write_text(partner_text(index, QA), encoding="utf-8")
        (repo / "hbsdeploy.yaml").write_text(f"default_environment: qa\nenvironments:\n  qa:\n"
                                             f"    portal: {handle.url}\napply:\n  parallelism: {parallelism}\n",
                                             encoding="utf-8")
        config = load_config(repo / "hbsdeploy.yaml")
        env = config.environment("qa")
        project = load_project(config, env)
        portal = HttpPortal(env, pool_size=parallelism)
        audit = AuditLog(repo / "audit.jsonl")
        counts: dict[str, int] = {}

        def served() -> int:
            # The emulator counts a request just after sending its answer: wait (bounded) until it has counted every
            # request the client sent, or a phase's last request would be counted in the next phase.
            deadline = time.monotonic() + 10
            while handle.stats.requests < served_before + portal.request_count and time.monotonic() < deadline:
                time.sleep(0.005)
            return handle.stats.requests

        def mark(name: str, since: int) -> int:
            now = served()
            counts[name] = now - since
            return now

        served_before = handle.stats.requests
        seen = served_before
        started = time.perf_counter()
        plan = make_plan(project, env, portal, parallelism, bulk=how != "before")
        seen = mark("plan", seen)
        if how == "saved":
            check_fresh(plan, portal, parallelism)
            seen = mark("freshness check", seen)
        result = apply_plan(plan, portal, audit, parallelism=parallelism, read_back=how != "before")
        if how == "before":  # the old verification: a GET per write
            with ThreadPoolExecutor(max_workers=parallelism) as pool:
                list(pool.map(lambda c: portal.get_service_type(c.partner_id, c.service_type), plan.changes))
        elapsed = time.perf_counter() - started
        seen = mark("apply (writes and read-back)", seen)
        assert result.count(Status.APPLIED) == len(plan.changes)
        again = make_plan(project, env, portal, parallelism, bulk=how != "before")
        result = apply_plan(again, portal, audit, parallelism=parallelism)
        seen = mark("re-apply", seen)
        portal.close()
        puts = handle.stats.statuses.get(200, 0)
        return {"changes": len(plan.changes), "requests": counts, "seconds": elapsed,
                "re_apply_changes": len(again.changes), "total_200": puts}
    finally:
        handle.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="bench-apply-") as temp:
        figures = {how: run(Path(temp), args.partners, args.latency_ms, args.parallelism, how)
                   for how in ("now", "saved", "before")}
    out = {"machine": machine(), "load_average": [round(x, 2) for x in os.getloadavg()], "partners": args.partners,
           "latency_ms": args.latency_ms, "parallelism": args.parallelism, **figures}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"machine: {out['machine']}; load average {out['load_average']}")
    print(f"{args.partners} partners, {figures['now']['changes']} changes, latency {args.latency_ms:g} ms, "
          f"parallelism {args.parallelism}; requests counted by the emulator")
    for how, label in (("now", "apply (plan made now)"), ("saved", "apply PLANFILE"),
                       ("before", "before issue 16 (replayed)")):
        f = figures[how]
        parts = ", ".join(f"{k} {v}" for k, v in f["requests"].items() if k != "re-apply")
        total = sum(v for k, v in f["requests"].items() if k != "re-apply")
        print(f"  {label:28} {total:5d} requests ({parts}) in {f['seconds']:.2f} s; re-apply: "
              f"{f['re_apply_changes']} changes, {f['requests']['re-apply']} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
