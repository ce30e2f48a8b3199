"""Files the CLI is told to write but cannot: a one-line error naming the path, exit 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hbsdeploy.cli.main import cli


@pytest.mark.parametrize("args", [
    ("plan", "--out", "blocker/plan.json"),
    ("render", "--out", "blocker/payloads"),
    ("import", "--env", "sandbox", "--partner", "DE*X77", "--role", "cpo", "--out", "blocker/de-x77.yaml"),
])
def test_an_output_path_that_cannot_be_written_is_one_line(repo_copy: Path, args: tuple[str, ...],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_copy)
    (repo_copy / "blocker").write_text("a file where a folder is needed\n")
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: blocker") and "check the path" in lines[0]


@pytest.mark.parametrize("args, code", [
    (("plan", "--formt", "json"), 2),
    (("plan", "--env", "bogus"), 2),
    (("render", "--env", "bogus"), 2),
    (("plan", "--detailed-exitcode", "--formt", "json"), 1),  # 2 would read as "changes pending"
    (("plan", "--detailed-exitcode", "--env", "bogus"), 1),
])
def test_usage_errors_exit_2_except_where_2_means_changes_pending(repo_copy: Path, args: tuple[str, ...], code: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_copy)
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output


@pytest.mark.parametrize("args, message", [
    (("--partner", "garbage!", "--role", "cpo"), "is neither an OperatorID (e.g. DE*A36) nor a ProviderID"),
    (("--partner", "DE-8EO", "--role", "cpo"), "is not an OperatorID (e.g. DE*A36), which --role cpo needs"),
    (("--partner", "DEX77"), "could be an OperatorID or a ProviderID; pass --role cpo or --role emp"),
])
def test_import_refuses_an_id_that_cannot_make_a_valid_partner_file(repo_copy: Path, args: tuple[str, ...],
                                                                    message: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_copy)
    result = CliRunner().invoke(cli, ["import", "--env", "sandbox", "--out", "partners/new.yaml", *args])
    assert result.exit_code == 1 and message in result.stderr
    assert not (repo_copy / "partners" / "new.yaml").exists()


def test_validate_json_reports_a_missing_config_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["validate", "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["format_version"] == 1 and [e["rule"] for e in document["errors"]] == ["config-not-found"]


@pytest.mark.parametrize("args", [("plan",), ("plan", "--format", "json"), ("validate",)])
def test_a_reader_that_went_away_is_quiet(repo_copy: Path, args: tuple[str, ...]) -> None:
    """`hbsdeploy plan | head -0`: the reader closed the pipe. No "check the path" hint (it is no file's fault), no
    "Exception ignored" from the final flush, exit 1 (issue 14)."""
    process = subprocess.Popen([sys.executable, "-m", "hbsdeploy", *args], cwd=repo_copy, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait() == 1
    assert err == b""
