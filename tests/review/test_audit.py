"""`hbsdeploy audit`: the history per partner, service type and environment, filtered, as text and as JSON that
schemas/audit.schema.json describes (issue 12, scenario 5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.e2e.helpers import OFFLINE_CPO
from tests.helpers import REPO, run_cli

SCHEMA = json.loads((REPO / "schemas" / "audit.schema.json").read_text(encoding="utf-8"))


def _validator(ref: str | None = None) -> jsonschema.Draft202012Validator:
    schema = SCHEMA if ref is None else {"$ref": ref, "$defs": SCHEMA["$defs"]}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _history(*args: str) -> dict[str, Any]:
    ran = run_cli("audit", "--format", "json", *args)
    assert ran.code == 0, ran.output
    document: dict[str, Any] = json.loads(ran.stdout)
    _validator().validate(document)
    return document


@pytest.fixture
def applied_twice(repo: Path) -> Path:
    """The sandbox enabled by alice, then DE*A36 switched off by bob."""
    assert run_cli("apply", "--auto-approve", env={"GITHUB_ACTOR": "alice"}).code == 0
    (repo / "partners" / "example-cpo.yaml").write_text(OFFLINE_CPO, encoding="utf-8")
    assert run_cli("apply", "--auto-approve", "--allow-disables", env={"GITHUB_ACTOR": "bob"}).code == 0
    return repo


def test_every_line_of_the_audit_log_is_an_entry_of_the_schema(applied_twice: Path) -> None:
    lines = (applied_twice / ".hbsdeploy" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6
    for line in lines:
        _validator("#/$defs/entry").validate(json.loads(line))


def test_the_schema_refuses_what_is_not_an_entry() -> None:
    entry: dict[str, Any] = {"time": "2026-11-26T15:00:00.000+00:00", "user": "alice", "environment": "prod",
             "partner_id": "DE*X01", "service_type": "authorization", "kind": "enable",
             "before": {}, "after": {}, "result": "applied", "message": None, "plan_checksum": "sha256:00"}
    errors = {error.json_path for error in _validator("#/$defs/entry").iter_errors(entry)}
    assert {"$.before", "$.after", "$.plan_checksum"} <= errors


def test_history_of_one_partner_and_service_type_shows_who_when_what_and_result(applied_twice: Path) -> None:
    ran = run_cli("audit", "--env", "sandbox", "--partner", "DE*A36", "--service-type", "reservation")
    assert ran.code == 0, ran.output
    lines = ran.stdout.splitlines()
    assert "sandbox  DE*A36 / reservation  enable: applied  by alice" in lines[0]
    assert lines[1].startswith("    ") and "online_request: false -> true" in lines[1]
    assert lines[2].startswith("    plan sha256:")
    assert "sandbox  DE*A36 / reservation  disable: applied  by bob" in lines[3]
    assert "online_request: true -> false" in lines[4]
    assert lines[-1] == "2 entries"


def test_filters_combine_and_json_matches_the_schema(applied_twice: Path) -> None:
    assert len(_history()["entries"]) == 6
    by_bob = _history("--user", "bob")["entries"]
    assert [(e["partner_id"], e["service_type"], e["kind"]) for e in by_bob] == [
        ("DE*A36", "authorization", "disable"), ("DE*A36", "reservation", "disable")]
    assert _history("--result", "failed")["entries"] == []
    assert len(_history("--partner", "DE*A36", "--partner", "DE-8EO")["entries"]) == 5
    assert _history("--since", "2000-01-01", "--until", "2000-12-31")["entries"] == []
    assert len(_history("--since", "2000-01-01")["entries"]) == 6
    assert _history("--env", "prod")["entries"] == []


def test_logs_of_several_ci_runs_are_merged_once_each(applied_twice: Path, tmp_path: Path) -> None:
    log = applied_twice / ".hbsdeploy" / "audit.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    first, second = tmp_path / "run1.jsonl", tmp_path / "run2.jsonl"
    first.write_text("".join(lines[:4]), encoding="utf-8")
    second.write_text("".join(lines[2:]) + '{"torn": ', encoding="utf-8")  # overlapping, and a torn last line
    document = _history("--log", str(first), "--log", str(second))
    assert len(document["entries"]) == 6
    assert document["skipped_lines"] == 0  # a torn last line is not an entry at all (read_audit drops it)


def test_a_missing_log_given_is_an_error_the_default_one_an_empty_history(repo: Path) -> None:
    ran = run_cli("audit")
    assert ran.code == 0 and ran.stdout == "0 entries\n"
    assert "no audit log at" in ran.stderr and "--log" in ran.stderr
    missing = run_cli("audit", "--log", "nowhere.jsonl")
    assert missing.code == 1 and "nowhere.jsonl: no audit log there" in missing.stderr


def test_a_wrong_date_is_a_usage_error(repo: Path) -> None:
    ran = run_cli("audit", "--since", "last tuesday")
    assert ran.code == 2
    assert "--since 'last tuesday' is not a date or time" in ran.stderr


def test_partner_matches_any_spelling_of_the_id_as_plan_resolves_it(applied_twice: Path) -> None:
    """Was: `--partner DEA36` 0 entries where `--partner 'DE*A36'` gave 2 (issue 13 review)."""
    args = ("--env", "sandbox", "--service-type", "reservation")
    written = [e["time"] for e in _history(*args, "--partner", "DE*A36")["entries"]]
    assert len(written) == 2
    for spelling in ("DEA36", "dea36", "de*a36"):
        assert [e["time"] for e in _history(*args, "--partner", spelling)["entries"]] == written, spelling
    assert _history(*args, "--partner", "DE-A36")["entries"] == []  # the provider DE-A36 is another partner


_SETTINGS = {"online_request": False, "broadcast_request": False, "service_url": None, "client_certification": True,
             "certificate": "hubject", "certificate_sha256": None}


def _entry(partner_id: str, minute: int) -> str:
    return json.dumps({"time": f"2026-11-26T15:{minute:02d}:00.000+00:00", "user": "alice", "environment": "sandbox",
                       "partner_id": partner_id, "service_type": "reservation", "kind": "change",
                       "before": _SETTINGS, "after": {**_SETTINGS, "online_request": True}, "result": "applied",
                       "message": None, "plan_checksum": "sha256:" + "0" * 64}) + "\n"


def test_partner_finds_entries_written_with_another_spelling(repo: Path, tmp_path: Path) -> None:
    """A numeric OperatorID with or without its `+`, and entries an older hbsdeploy wrote as the file spelled the ID;
    an operator and a provider of one code stay two partners."""
    log = tmp_path / "old.jsonl"
    log.write_text("".join(_entry(pid, minute) for minute, pid in enumerate(
        ["+49*536", "49*536", "DEDUA", "DE*DUA", "DE-DUA", "DE*X01"])), encoding="utf-8")

    def ids(partner: str) -> list[str]:
        return [e["partner_id"] for e in _history("--log", str(log), "--partner", partner)["entries"]]

    assert ids("49*536") == ids("+49*536") == ["+49*536", "49*536"]
    assert ids("DE*DUA") == ["DEDUA", "DE*DUA"]  # the old `DEDUA` may have been either
    assert ids("DE-DUA") == ["DEDUA", "DE-DUA"]
    assert ids("DEDUA") == ["DEDUA", "DE*DUA", "DE-DUA"]  # names both: the history shows both
    assert ids("dex01") == ["DE*X01"]


@pytest.mark.parametrize(("junk", "said"), [
    (1, "; 1 line of the logs was not an audit entry and is left out"),
    (2, "; 2 lines of the logs were not audit entries and are left out"),
])
def test_lines_that_are_not_entries_are_counted_in_words_that_agree(applied_twice: Path, junk: int,
                                                                    said: str) -> None:
    """Was: "1 line of the logs were not audit entries and are left out" (issue 13 review, replaying audit)."""
    log = applied_twice / ".hbsdeploy" / "audit.jsonl"
    log.write_text('{"not": "an entry"}\n' * junk + log.read_text(encoding="utf-8"), encoding="utf-8")
    ran = run_cli("audit")
    assert ran.code == 0, ran.output
    assert ran.stdout.splitlines()[-1].endswith(said), ran.stdout.splitlines()[-1]
