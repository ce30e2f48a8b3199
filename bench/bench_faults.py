"""A bounded soak: plan and apply against a portal emulator that fails 30% of its requests, until nothing is left.

The emulator (in this process, plain HTTP on 127.0.0.1, seeded) injects 500, 503 and 429 (with Retry-After: 1),
dropped connections and answers lost after the write. hbsdeploy plans and applies with its HTTP client, real
back-off sleeps included, round after round until a plan through the faulty portal is empty. After every round each
change reported applied is checked against the emulator's store, and at the end the audit log is checked against it.

Printed: faults injected by kind, requests, retries, rounds, changes applied and failed as reported, and

  * changes invented: reported applied, but the portal did not hold them at that moment     (must be 0)
  * changes lost:     wanted by the partner files, but not in the portal after convergence   (must be 0)
  * audit vs portal:  per service type, applied entries <= writes the portal took <= applied + failed entries
                      that say the write may have landed; every applied entry holds what the portal holds

    python bench/bench_faults.py [--partners 100] [--fail-rate 0.3] [--seed 1] [--parallelism 8] [--json]

Exit status 1 when anything was invented or lost, the audit log disagrees, or it does not converge in --max-rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, partner_text  # noqa: E402

from hbsdeploy.apply.audit import AuditLog, read_audit  # noqa: E402
from hbsdeploy.apply.run import UNKNOWN_OUTCOME, Status, apply_plan  # noqa: E402
from hbsdeploy.check.project import load_project  # noqa: E402
from hbsdeploy.load.config import load_config  # noqa: E402
from hbsdeploy.load.settings import normalize_settings  # noqa: E402
from hbsdeploy.plan.build import desired_payloads, make_plan  # noqa: E402
from hbsdeploy.portal import PortalError  # noqa: E402
from hbsdeploy.portal.emulator import serve  # noqa: E402
from hbsdeploy.portal.http import HttpPortal  # noqa: E402
from hbsdeploy.render.payloads import Renderer  # noqa: E402

MAY_HAVE_LANDED = (UNKNOWN_OUTCOME, "run plan to see whether it holds")

CONFIG = """\
partners: partners
default_environment: qa
environments:
  qa:
    portal: {url}
    max_retries: {max_retries}
    timeouts:
      connect: 5
      read: 10
apply:
  max_disable_fraction: 0.25
  parallelism: {parallelism}
"""


def make_repository(folder: Path, partners: int, url: str, max_retries: int, parallelism: int) -> Path:
    (folder / "partners").mkdir(parents=True)
    import shutil

    shutil.copytree(REPO / "templates", folder / "templates")
    for index in range(partners):
        (folder / "partners" / f"partner-{index:05d}.yaml").write_text(
            partner_text(index, "  qa:\n"), encoding="utf-8")
    (folder / "hbsdeploy.yaml").write_text(
        CONFIG.format(url=url, max_retries=max_retries, parallelism=parallelism), encoding="utf-8")
    return folder


def soak(partners: int, fail_rate: float, seed: int, parallelism: int, max_retries: int,
         max_rounds: int) -> dict[str, Any]:
    """Run the soak in a temporary folder; the figures."""
    with tempfile.TemporaryDirectory(prefix="hbsdeploy-soak-") as tmp:
        folder = Path(tmp)
        handle = serve(folder / "emulator.sqlite3", fail_rate=fail_rate, seed=seed, auto_register=True,
                       log_stream=None)
        try:
            repo = make_repository(folder / "repo", partners, handle.url, max_retries, parallelism)
            config = load_config(repo / "hbsdeploy.yaml")
            env = config.environment("qa")
            project = load_project(config, env)
            audit_file = config.state_dir / "audit.jsonl"
            audit = AuditLog(audit_file)
            truth = handle.portal
            figures: dict[str, Any] = {"rounds": 0, "plans_failed": 0, "requests_sent": 0, "retries": 0,
                                       "applied_reported": 0, "applied_after_read_back": 0, "failed_reported": 0,
                                       "failed_may_have_landed": 0, "not_attempted": 0, "changes_invented": 0,
                                       "converged": False}
            started = time.perf_counter()
            while figures["rounds"] < max_rounds:
                figures["rounds"] += 1
                portal = HttpPortal(env)
                try:
                    try:
                        plan = make_plan(project, env, portal, parallelism)
                    except PortalError:
                        figures["plans_failed"] += 1
                        continue
                    if not plan.has_changes:
                        figures["converged"] = True
                        break
                    result = apply_plan(plan, portal, audit, parallelism=parallelism)
                finally:
                    figures["requests_sent"] += portal.request_count
                    figures["retries"] += portal.retry_count
                    portal.close()
                for item in result.results:
                    holds = dict(truth.get_service_type(*item.change.key).settings) == dict(item.change.after)
                    if item.status is Status.APPLIED:
                        figures["applied_reported"] += 1
                        if item.message and "reading it back shows the update was made" in item.message:
                            figures["applied_after_read_back"] += 1
                        figures["changes_invented"] += 0 if holds else 1
                    elif item.status is Status.FAILED:
                        figures["failed_reported"] += 1
                        if any(phrase in (item.message or "") for phrase in MAY_HAVE_LANDED):
                            figures["failed_may_have_landed"] += 1
                    else:
                        figures["not_attempted"] += 1
            figures["seconds"] = round(time.perf_counter() - started, 1)
            wanted = {(d.partner_id, d.service_type): normalize_settings(d.payload)
                      for d in desired_payloads(project, env, Renderer(config))}
            entries = read_audit(audit_file)
            lost = disagreements = writes = 0
            for key, settings in wanted.items():
                state = truth.get_service_type(*key)
                version = int(state.version.strip('"'))
                writes += version
                lost += 0 if dict(state.settings) == settings else 1
                mine = [e for e in entries if (e["partner_id"], e["service_type"]) == key]
                applied = [e for e in mine if e["result"] == "applied"]
                unclear = [e for e in mine if e["result"] == "failed"
                           and any(phrase in (e["message"] or "") for phrase in MAY_HAVE_LANDED)]
                if not (len(applied) <= version <= len(applied) + len(unclear)) \
                        or any(e["after"] != dict(state.settings) for e in applied):
                    disagreements += 1
            stats = handle.stats
            figures.update({
                "partners": partners, "service_types": len(wanted), "fail_rate": fail_rate, "seed": seed,
                "parallelism": parallelism, "max_retries": max_retries,
                "faults_injected": sum(stats.faults.values()), "faults_by_kind": dict(sorted(stats.faults.items())),
                "requests_served": stats.requests, "writes_in_portal": writes, "changes_lost": lost,
                "audit_entries": len(entries), "audit_disagreements": disagreements,
            })
            return figures
        finally:
            handle.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=100)
    parser.add_argument("--fail-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--max-retries", type=int, default=4)
    parser.add_argument("--max-rounds", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = soak(args.partners, args.fail_rate, args.seed, args.parallelism, args.max_retries, args.max_rounds)
    figures["machine"] = machine()
    ok = (figures["converged"] and figures["changes_lost"] == 0 and figures["changes_invented"] == 0
          and figures["audit_disagreements"] == 0)
    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
        return 0 if ok else 1
    kinds = ", ".join(f"{kind} {count}" for kind, count in figures["faults_by_kind"].items())
    print(f"soak: {figures['partners']} partners, {figures['service_types']} service types, fail rate "
          f"{figures['fail_rate']}, seed {figures['seed']}, parallelism {figures['parallelism']}, max_retries "
          f"{figures['max_retries']}")
    print(f"machine: {figures['machine']}")
    print(f"rounds: {figures['rounds']} ({figures['plans_failed']} plans stopped by a fault), "
          f"converged: {'yes' if figures['converged'] else 'NO'}, {figures['seconds']} s")
    print(f"requests: {figures['requests_sent']} sent, {figures['requests_served']} served or dropped; "
          f"retries: {figures['retries']}")
    print(f"faults injected: {figures['faults_injected']} ({kinds})")
    print(f"changes: {figures['applied_reported']} reported applied ({figures['applied_after_read_back']} after a lost "
          f"answer, by reading back), {figures['failed_reported']} reported failed "
          f"({figures['failed_may_have_landed']} of them saying the write may have landed), "
          f"{figures['not_attempted']} not attempted; {figures['writes_in_portal']} writes in the portal")
    print(f"changes invented (reported applied, not in the portal): {figures['changes_invented']}")
    print(f"changes lost (wanted, not in the portal after convergence): {figures['changes_lost']}")
    print(f"audit vs portal: {figures['audit_entries']} entries, "
          f"{figures['service_types'] - figures['audit_disagreements']}/{figures['service_types']} service types "
          "agree")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
