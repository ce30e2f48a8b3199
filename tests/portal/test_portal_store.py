"""The SQLite store and the embedded LocalPortal: versions, If-Match, normalisation, rules, concurrency."""

from __future__ import annotations

import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hbsdeploy.load.schemaset import package_schemas
from hbsdeploy.load.settings import DEFAULT_SETTINGS
from hbsdeploy.portal import PartnerNotFound, PayloadRejected, PortalStateError, VersionConflict
from hbsdeploy.portal.contract import check_payload, format_etag, parse_etag
from hbsdeploy.portal.local import LocalPortal
from hbsdeploy.portal.store import StaleVersion, Store, UnknownPartner
from tests.portal.helpers import payload

PARTNER = "DE*A36"


def test_etags() -> None:
    assert format_etag(3) == '"3"'
    assert parse_etag('"3"') == 3 and parse_etag(' "0" ') == 0
    for value in (None, "*", 'W/"3"', "3", '"-1"', '"abc"', '"3", "4"'):
        assert parse_etag(value) is None


def test_store_versions_and_compare_and_write(tmp_path: Path) -> None:
    store = Store(tmp_path / "deep" / "folder" / "state.sqlite3")
    with pytest.raises(UnknownPartner):
        store.read(PARTNER, "authorization")
    assert store.register_partner(PARTNER) is True
    assert store.register_partner(PARTNER) is False
    assert store.read(PARTNER, "authorization").version == 0
    assert store.write(PARTNER, "authorization", {"a": 1}, 0) == 1
    with pytest.raises(StaleVersion) as stale:
        store.write(PARTNER, "authorization", {"a": 2}, 0)
    assert stale.value.current == 1
    assert store.write(PARTNER, "authorization", {"a": 2}, 1) == 2
    assert store.read(PARTNER, "authorization").settings == {"a": 2}
    assert set(store.read_all(PARTNER)) == {"authorization"}
    assert store.partners() == [PARTNER]
    # a second Store on the same file sees the same state (another process would too)
    assert Store(tmp_path / "deep" / "folder" / "state.sqlite3").read(PARTNER, "authorization").version == 2


def test_store_uses_wal_and_busy_timeout(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    db = store._connect()
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == store.busy_timeout_ms
    finally:
        db.close()


def test_local_portal_defaults_versions_and_normalisation(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path / "s.sqlite3")
    states = portal.list_service_types(PARTNER)  # a fresh sandbox knows every partner
    assert set(states) == {"authorization", "reservation"}
    assert all(s.version == '"0"' and s.settings == DEFAULT_SETTINGS for s in states.values())
    written = portal.update_service_type(PARTNER, "authorization",
                                         payload(service_url="HTTPS://OICP.Example.COM:443/base/"), '"0"')
    assert written.version == '"1"'
    assert written.settings["service_url"] == "https://oicp.example.com/base"
    read = portal.get_service_type(PARTNER, "authorization")
    assert read == written
    off = portal.update_service_type(PARTNER, "authorization",
                                     payload(online_request=False, service_url=None), '"1"')
    assert off.settings == {**DEFAULT_SETTINGS, "client_certification": True}
    assert portal.list_service_types(PARTNER)["authorization"].version == '"2"'


def test_local_portal_stale_and_garbage_if_match(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path / "s.sqlite3")
    portal.update_service_type(PARTNER, "authorization", payload(), '"0"')
    for stale in ('"0"', '"7"', "*", "garbage"):
        with pytest.raises(VersionConflict, match="changed since the plan"):
            portal.update_service_type(PARTNER, "authorization", payload(), stale)
    assert portal.get_service_type(PARTNER, "authorization").version == '"1"'


def test_local_portal_enforces_the_rules(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path / "s.sqlite3", allow_private_hosts=False)
    with pytest.raises(PayloadRejected) as caught:
        portal.update_service_type(PARTNER, "authorization",
                                   payload(online_request=False, broadcast_request=True), '"0"')
    rules = {d["rule"] for d in caught.value.details}
    assert "broadcast-needs-online-request" in rules and "url-needs-online-request" not in rules
    with pytest.raises(PayloadRejected, match="service_url"):
        portal.update_service_type(PARTNER, "authorization", payload(service_url="https://127.0.0.1/x"), '"0"')
    with pytest.raises(PayloadRejected) as schema:
        portal.update_service_type(PARTNER, "reservation", {"online_request": "yes", "bogus": 1}, '"0"')
    assert {d["rule"] for d in schema.value.details} >= {"unknown-field", "required", "schema-type"}
    assert portal.get_service_type(PARTNER, "authorization").version == '"0"'
    sandbox = LocalPortal(tmp_path / "t.sqlite3", allow_private_hosts=True)
    sandbox.update_service_type(PARTNER, "authorization", payload(service_url="https://127.0.0.1:8443"), '"0"')


AUTHORIZATION = package_schemas().service_types["authorization"]


def test_check_payload_user_certificate() -> None:
    good = payload(certificate="user", certificate_sha256="ab" * 32)
    assert check_payload(AUTHORIZATION, good, allow_private_hosts=False) == []
    bad = check_payload(AUTHORIZATION, payload(certificate="user", certificate_sha256="AB" * 32),
                        allow_private_hosts=False)
    assert [d.field for d in bad] == ["certificate_sha256"]
    assert check_payload(AUTHORIZATION, payload(certificate="user"), allow_private_hosts=False)[0].rule == \
        "certificate-file-required"
    assert check_payload(AUTHORIZATION, [], allow_private_hosts=False)[0].rule == "payload-type"


def test_unknown_partner_and_service_type(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path / "s.sqlite3", auto_register=False)
    with pytest.raises(PartnerNotFound, match="unknown partner"):
        portal.list_service_types(PARTNER)
    portal.register_partner(PARTNER)
    assert portal.get_service_type(PARTNER, "reservation").version == '"0"'
    with pytest.raises(PartnerNotFound, match="unknown service type 'pull'"):
        portal.get_service_type(PARTNER, "pull")


def test_unusable_state_file_is_a_portal_state_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PortalStateError, match="state file cannot be used"):
        LocalPortal(bad)


def test_threads_lose_no_update(tmp_path: Path) -> None:
    """N writers each read-modify-write with If-Match until they succeed: every success is one version."""
    path = tmp_path / "s.sqlite3"
    LocalPortal(path).register_partner(PARTNER)
    successes = []
    conflicts = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        portal = LocalPortal(path)
        for round_ in range(5):
            current = portal.get_service_type(PARTNER, "authorization")
            body = payload(service_url=f"https://w{index}-{round_}.example.com")
            try:
                portal.update_service_type(PARTNER, "authorization", body, current.version)
            except VersionConflict:
                with lock:
                    conflicts.append(index)
            else:
                with lock:
                    successes.append(index)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = LocalPortal(path).get_service_type(PARTNER, "authorization")
    assert final.version == f'"{len(successes)}"'
    assert len(successes) + len(conflicts) == 40 and len(successes) >= 1


def _process_writer(path: str, count: int, results: multiprocessing.Queue[int]) -> None:
    portal = LocalPortal(Path(path))
    done = 0
    for round_ in range(count):
        current = portal.get_service_type(PARTNER, "authorization")
        try:
            portal.update_service_type(PARTNER, "authorization",
                                       payload(service_url=f"https://p{round_}.example.com"), current.version)
            done += 1
        except VersionConflict:
            pass
    results.put(done)


def test_processes_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    LocalPortal(path).register_partner(PARTNER)
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[int] = context.Queue()
    workers = [context.Process(target=_process_writer, args=(str(path), 10, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    total = sum(results.get(timeout=5) for _ in workers)
    assert LocalPortal(path).get_service_type(PARTNER, "authorization").version == f'"{total}"'


def test_a_writer_killed_mid_transaction_leaves_the_last_commit(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    portal = LocalPortal(path)
    portal.update_service_type(PARTNER, "authorization", payload(), '"0"')
    # A process killed (SIGKILL) in the middle of a write transaction leaves the last committed state.
    script = (
        "import os, signal, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('BEGIN IMMEDIATE')\n"
        "db.execute(\"UPDATE service_types SET settings = 'torn', version = 99\")\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(path)], check=False, timeout=30)
    assert killed.returncode == -signal.SIGKILL
    state = portal.get_service_type(PARTNER, "authorization")
    assert state.version == '"1"' and state.settings["service_url"] == "https://oicp.example.com/base"
    assert portal.update_service_type(PARTNER, "authorization", payload(), '"1"').version == '"2"'


def test_one_connection_per_process_whatever_the_calls_and_threads(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    opened: list[object] = []
    real = sqlite3.connect

    def counting(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db: sqlite3.Connection = real(*args, **kwargs)
        opened.append(db)
        return db

    monkeypatch.setattr("hbsdeploy.portal.store.sqlite3.connect", counting)
    portal = LocalPortal(tmp_path / "s.sqlite3")

    def work(index: int) -> None:
        partner_id = f"DE*B{index:02d}"
        portal.update_service_type(partner_id, "authorization", payload(), '"0"')
        portal.list_service_types(partner_id)
        portal.get_service_type(partner_id, "reservation")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(portal.list_all_service_types()) == 8
    assert len(opened) == 1
    portal.close()
    assert portal.list_service_types("DE*B00")["authorization"].version == '"1"'  # reopens after close
    assert len(opened) == 2


def test_a_commit_that_fails_is_rolled_back_and_the_connection_stays_usable(tmp_path: Path) -> None:
    """The store keeps one connection per process: a COMMIT that fails (here a deferred foreign key, which SQLite
    checks at COMMIT and which leaves the transaction open) must not leave it inside a transaction."""
    store = Store(tmp_path / "state.sqlite3")
    store.register_partner(PARTNER)
    with pytest.raises(sqlite3.IntegrityError), store._transaction() as db:
        db.execute("PRAGMA defer_foreign_keys = ON")
        db.execute("INSERT INTO service_types VALUES ('DE*B12', 'authorization', '{}', 1, 0)")
    assert store.write(PARTNER, "authorization", {"a": 1}, 0) == 1
    assert store.read(PARTNER, "authorization").version == 1
