"""`hbsdeploy apply` of many partners on the embedded sandbox portal against a bare SQLite script of the same
durability, in one run.

The write phase of hbsdeploy (`apply_plan` on a fresh sandbox store: one If-Match checked write per change, each in
its own `BEGIN IMMEDIATE` transaction on the store's one connection, WAL with synchronous=FULL, an fsync'd audit
line per change, then the read-back) is timed apart from loading, validating, rendering and planning.

The peer writes the same rows the same way without hbsdeploy: one connection, WAL, synchronous=FULL, per change a
transaction that reads the version, registers the partner and upserts the settings, then appends one JSON line to
an audit file with O_APPEND and fsync. "Peer, SQLite only" leaves the audit line out.

Target (issue 16): hbsdeploy's write phase at most 2x the peer's.

    python bench/bench_sandbox.py [--partners 2000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
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

TARGET_RATIO = 2.0


def library_apply(repo: Path) -> dict[str, float]:
    """Plan and apply the sandbox in this process, on a fresh store: planning and the write phase timed apart."""
    from hbsdeploy.apply.audit import AuditLog
    from hbsdeploy.apply.run import Status, apply_plan
    from hbsdeploy.check.project import load_project
    from hbsdeploy.load.config import load_config
    from hbsdeploy.plan.build import make_plan
    from hbsdeploy.portal.local import LocalPortal

    shutil.rmtree(repo / ".hbsdeploy", ignore_errors=True)  # a fresh store, audit log and lock folder
    started = time.perf_counter()
    config = load_config(repo / "hbsdeploy.yaml")
    env = config.environment("sandbox")
    assert env.state_file is not None
    portal = LocalPortal.from_environment(env, parallelism=config.parallelism)
    try:
        plan = make_plan(load_project(config, env), env, portal, config.parallelism, bulk=True)
        planned = time.perf_counter()
        result = apply_plan(plan, portal, AuditLog(config.state_dir / "audit.jsonl"), parallelism=config.parallelism)
        done = time.perf_counter()
    finally:
        portal.close()
    if result.count(Status.APPLIED) != len(plan.changes):
        raise SystemExit("hbsdeploy: not every change applied")
    return {"plan_s": planned - started, "write_s": done - planned, "writes": len(plan.changes)}


def peer(folder: Path, rows: list[tuple[str, str, dict[str, Any]]], audit: bool) -> float:
    """The same writes with the same durability, as a bare script."""
    state = folder / "peer.sqlite3"
    log = folder / "peer-audit.jsonl"
    for path in (state, log, state.with_name(state.name + "-wal"), state.with_name(state.name + "-shm")):
        path.unlink(missing_ok=True)
    started = time.perf_counter()
    db = sqlite3.connect(state, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.executescript("""
        CREATE TABLE partners (partner_id TEXT PRIMARY KEY, registered_at REAL NOT NULL);
        CREATE TABLE service_types (partner_id TEXT NOT NULL REFERENCES partners(partner_id),
            service_type TEXT NOT NULL, settings TEXT NOT NULL, version INTEGER NOT NULL, updated_at REAL NOT NULL,
            PRIMARY KEY (partner_id, service_type));""")
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if audit else -1
    for partner_id, service_type, settings in rows:
        db.execute("BEGIN IMMEDIATE")
        row = db.execute("SELECT version FROM service_types WHERE partner_id = ? AND service_type = ?",
                         (partner_id, service_type)).fetchone()
        version = 0 if row is None else row[0]
        db.execute("INSERT OR IGNORE INTO partners VALUES (?, ?)", (partner_id, time.time()))
        db.execute("INSERT INTO service_types VALUES (?, ?, ?, ?, ?) ON CONFLICT (partner_id, service_type) DO UPDATE "
                   "SET settings = excluded.settings, version = excluded.version, updated_at = excluded.updated_at",
                   (partner_id, service_type, json.dumps(settings, sort_keys=True), version + 1, time.time()))
        db.execute("COMMIT")
        if audit:
            os.write(fd, (json.dumps({"partner_id": partner_id, "service_type": service_type, "after": settings,
                                      "result": "applied"}, sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
    if audit:
        os.close(fd)
    db.close()
    return time.perf_counter() - started


def cli_apply(repo: Path) -> float:
    shutil.rmtree(repo / ".hbsdeploy", ignore_errors=True)  # a fresh store, audit log and lock folder
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    subprocess.run([*HBSDEPLOY, "apply", "--env", "sandbox", "--auto-approve"], cwd=repo, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as temp:
        folder = Path(temp)
        repo = make_repository(folder / "repo", args.partners)
        (repo / ".hbsdeploy").mkdir(exist_ok=True)
        warm = library_apply(repo)  # warm-up: imports, templates
        from hbsdeploy.load.settings import DEFAULT_SETTINGS
        from tests.helpers import online_payload

        rows = [(f"DE*{i:05d}", name, {**DEFAULT_SETTINGS, **online_payload()})
                for i in range(args.partners) for name in ("authorization", "reservation")]
        library, bare, bare_sqlite, cli = [], [], [], []
        for _ in range(args.runs):  # interleaved: the machine's load hits every figure alike
            library.append(library_apply(repo))
            bare.append(peer(folder, rows, audit=True))
            bare_sqlite.append(peer(folder, rows, audit=False))
            cli.append(cli_apply(repo))
        load = os.getloadavg()
    f: dict[str, Any] = {
        "machine": machine(), "load_average": [round(x, 2) for x in load], "partners": args.partners,
        "writes": int(warm["writes"]), "plan_s": statistics.median(r["plan_s"] for r in library),
        "write_s": statistics.median(r["write_s"] for r in library), "peer_s": statistics.median(bare),
        "peer_sqlite_only_s": statistics.median(bare_sqlite), "cli_s": statistics.median(cli),
    }
    f["ratio"] = f["write_s"] / f["peer_s"]
    f["target_met"] = f["ratio"] <= TARGET_RATIO
    if args.json:
        print(json.dumps(f, indent=2))
        return 0 if f["target_met"] else 1
    print(f"machine: {f['machine']}; load average {f['load_average']}")
    print(f"{args.partners} partners, {f['writes']} writes on a fresh sandbox, median of {args.runs}")
    print(f"hbsdeploy write phase (apply_plan, audit, read-back): {f['write_s']:.2f} s = {f['ratio']:.2f}x the peer "
          f"(target <= {TARGET_RATIO}x: {'met' if f['target_met'] else 'MISSED'})")
    print(f"peer (bare SQLite + fsync'd audit line per write):   {f['peer_s']:.2f} s; SQLite only "
          f"{f['peer_sqlite_only_s']:.2f} s")
    print(f"hbsdeploy load + validate + render + plan: {f['plan_s']:.2f} s; whole `hbsdeploy apply` process: "
          f"{f['cli_s']:.2f} s")
    return 0 if f["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
