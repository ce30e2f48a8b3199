"""Issue 15's CLI conventions, replayed as written: global options after the command, `-` for standard input and
output, HBSDEPLOY_ENV, completion of environments and partners, --service-type, progress in logs, plurals."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from hbsdeploy.cli.terminal import ProgressLine
from tests.e2e.helpers import LOCAL_CONFIG, snapshot, write_config
from tests.helpers import run_cli

PIPED = {"HBSDEPLOY_ALLOW_PIPED_CONFIRMATION": "1"}


def _complete(words: str, env: dict[str, str | None] | None = None) -> list[str]:
    """What bash completion offers for the last word of `words`, through click's completion variables."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    ran = run_cli(env={"_HBSDEPLOY_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword),
                       **(env or {})})
    assert ran.code == 0, ran.output
    return [line.split(",", 1)[1] for line in ran.stdout.splitlines() if line]


# --- global options after the command ------------------------------------------------------------------------------

def test_global_options_work_after_the_command(repo: Path) -> None:
    before = run_cli("-q", "plan")
    after = run_cli("plan", "-q")  # was: "No such option: -q"
    assert after.code == before.code == 0, after.output
    assert after.stdout == before.stdout
    assert run_cli("plan", "--quiet", "--color", "never").code == 0


def test_a_pre_commit_config_argument_after_the_command(repo: Path, tmp_path: Path) -> None:
    infra = repo / "infra"
    infra.mkdir()
    for name in ("partners", "templates", "certs"):
        shutil.move(repo / name, infra / name)
    shutil.move(repo / "hbsdeploy.yaml", infra / "hbsdeploy.yaml")
    # pre-commit appends the file names after the hook's args: `hbsdeploy validate --config infra/... FILES`
    ran = run_cli("validate", "--config", "infra/hbsdeploy.yaml", "infra/partners/example-cpo.yaml")
    assert ran.code == 0, ran.output
    assert "checked 1 file: 0 errors" in ran.stdout
    missing = run_cli("validate", "--config", "nowhere.yaml")
    assert missing.code == 1 and "nowhere.yaml: no such config file (from --config)" in missing.stderr


def test_the_option_after_the_command_wins(repo: Path, tmp_path: Path) -> None:
    ran = run_cli("--config", str(tmp_path / "missing.yaml"), "validate", "--config", "hbsdeploy.yaml")
    assert ran.code == 0, ran.output


def test_verbose_after_the_command_logs(repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("hbsdeploy")
    level = logger.level
    try:
        assert run_cli("plan", "-v").code == 0
        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(level)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "hbsdeploy", False)]


def test_colour_is_chosen_by_the_option(repo: Path) -> None:
    coloured = run_cli("plan", "--color", "always")
    assert "\033[32m+\033[0m" in coloured.stdout
    assert "\033[" not in run_cli("--color", "never", "plan").stdout
    assert "\033[" not in run_cli("plan").stdout  # auto: not a terminal here
    bad = run_cli("plan", "--color", "sometimes")
    assert bad.code == 2 and "'sometimes' is not one of 'auto', 'always', 'never'" in bad.stderr


# --- `-` for standard input and output -----------------------------------------------------------------------------

def test_plan_out_dash_writes_the_plan_to_stdout_and_apply_dash_reads_it(repo: Path) -> None:
    planned = run_cli("plan", "--out", "-")
    assert planned.code == 0, planned.output
    assert not (repo / "-").exists()  # was: a file called `-`
    document = json.loads(planned.stdout)  # stdout is exactly the plan file
    assert document["summary"]["enable"] == 4
    assert "Plan: 4 to enable" in planned.stderr  # the --format output, for the person, on stderr
    assert run_cli("plan", "--out", "-", "-q").stderr == ""

    applied = run_cli("apply", "-", input=planned.stdout)
    assert applied.code == 0, applied.output
    assert "Apply: 4 applied, 0 failed, 0 not attempted." in applied.stdout
    assert len(snapshot(repo / ".hbsdeploy" / "sandbox.sqlite3")) == 4


def test_apply_dash_checks_what_it_reads(repo: Path) -> None:
    planned = run_cli("plan", "--out", "-").stdout
    altered = planned.replace("Example Charging GmbH", "Example Charging AG")
    refused = run_cli("apply", "-", input=altered)
    assert refused.code == 1 and refused.stderr.startswith("error: -: the plan file was altered")
    empty = run_cli("apply", "-", input="")
    assert empty.code == 1 and "error: -: empty, not a plan file" in empty.stderr
    wrong = run_cli("apply", "-", "--checksum", "sha256:00", input=planned)
    assert wrong.code == 1 and "is not the reviewed sha256:00" in wrong.stderr
    assert snapshot(repo / ".hbsdeploy" / "sandbox.sqlite3") == {}


def test_a_real_out_file_is_still_written_atomically(repo: Path) -> None:
    ran = run_cli("plan", "--out", "plan.json", "--format", "json")
    assert ran.code == 0 and (repo / "plan.json").read_text(encoding="utf-8") == ran.stdout
    assert [p.name for p in repo.iterdir() if p.name.startswith(".plan.json")] == []  # no temporary file left


# --- HBSDEPLOY_ENV --------------------------------------------------------------------------------------------------

def test_hbsdeploy_env_chooses_the_environment(repo: Path) -> None:
    write_config(repo, LOCAL_CONFIG.format(default="sandbox").replace("  qa:\n    portal: manual\n",
                                                                       "  qa:\n    portal: local\n"))
    ran = run_cli("plan", env={"HBSDEPLOY_ENV": "qa"})
    assert ran.code == 0, ran.output
    assert "hbsdeploy will make these changes in qa:" in ran.stdout
    explicit = run_cli("plan", "--env", "sandbox", env={"HBSDEPLOY_ENV": "qa"})  # --env beats the variable
    assert "changes in sandbox:" in explicit.stdout
    unknown = run_cli("plan", env={"HBSDEPLOY_ENV": "staging"})
    assert unknown.code == 2
    assert "no environment 'staging' (from $HBSDEPLOY_ENV); choose one of: prod, qa, sandbox" in unknown.stderr


def test_hbsdeploy_env_names_a_protected_environment(repo: Path) -> None:
    write_config(repo, LOCAL_CONFIG.format(default="sandbox"))
    saved = run_cli("plan", "--env", "prod", "--out", "prod.plan.json")
    assert saved.code == 0, saved.output
    unnamed = run_cli("apply", "prod.plan.json")
    assert unnamed.code == 2 and "name it with --env prod" in unnamed.stderr
    named = run_cli("apply", "prod.plan.json", env={"HBSDEPLOY_ENV": "prod"})  # as the CI examples set it
    assert named.code == 0, named.output


def test_hbsdeploy_env_does_not_narrow_validate(repo: Path) -> None:
    """A developer's exported HBSDEPLOY_ENV must not make the hook skip another environment's rules."""
    partner = repo / "partners" / "example-cpo.yaml"
    text = partner.read_text(encoding="utf-8")
    partner.write_text(text.replace("  prod:\n", "  prod:\n    service_types:\n      authorization:\n"
                                                 "        service_url: http://oicp.example-charging.com\n", 1),
                       encoding="utf-8")
    ran = run_cli("validate", env={"HBSDEPLOY_ENV": "sandbox"})
    assert ran.code == 1 and "example-cpo.yaml" in ran.stdout, ran.output


# --- completion -----------------------------------------------------------------------------------------------------

def test_completion_offers_environments_and_partners(repo: Path) -> None:
    assert _complete("hbsdeploy plan --env ") == ["prod", "qa", "sandbox"]
    assert _complete("hbsdeploy apply --env q") == ["qa"]
    assert _complete("hbsdeploy validate --env s") == ["sandbox"]
    assert _complete("hbsdeploy plan --partner ") == ["+49*536", "DE*A36", "DE-8EO"]
    assert _complete("hbsdeploy render --partner de-") == ["DE-8EO"]
    assert _complete("hbsdeploy plan --service-type r") == ["reservation"]


def test_completion_follows_the_config_given(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "hbsdeploy.yaml").write_text("environments:\n  sandbox:\n    portal: local\n  staging:\n"
                                              "    portal: manual\n", encoding="utf-8")
    config = str(elsewhere / "hbsdeploy.yaml")
    assert _complete(f"hbsdeploy plan --config {config} --env ") == ["sandbox", "staging"]
    assert _complete(f"hbsdeploy --config {config} plan --env ") == ["sandbox", "staging"]
    assert _complete(f"hbsdeploy plan --config {config} --partner ") == []  # no partners folder there
    assert _complete("hbsdeploy plan --env ", env={"HBSDEPLOY_CONFIG": config}) == ["sandbox", "staging"]


def test_completion_offers_nothing_rather_than_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no hbsdeploy.yaml here or above
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    assert _complete("hbsdeploy plan --env ") == []
    (tmp_path / "hbsdeploy.yaml").write_text("environments: [\n", encoding="utf-8")  # broken YAML
    assert _complete("hbsdeploy plan --env ") == []
    assert _complete("hbsdeploy plan --partner ") == []


# --- --service-type -------------------------------------------------------------------------------------------------

def test_service_type_narrows_plan_and_apply(repo: Path) -> None:
    planned = run_cli("plan", "--service-type", "reservation")
    assert planned.code == 0, planned.output
    assert "DE*A36 (Example Charging GmbH) / reservation [enable]" in planned.stdout
    assert "/ authorization" not in planned.stdout
    assert "Plan: 1 to enable" in planned.stdout
    both = run_cli("plan", "--service-type", "authorization", "--partner", "DE*A36")
    assert "Plan: 1 to enable" in both.stdout and "DE*A36 (Example Charging GmbH) / authorization" in both.stdout

    applied = run_cli("apply", "--service-type", "authorization", "--auto-approve")
    assert applied.code == 0, applied.output
    held = snapshot(repo / ".hbsdeploy" / "sandbox.sqlite3")
    assert sorted(held) == [("+49*536", "authorization"), ("DE*A36", "authorization"), ("DE-8EO", "authorization")]


def test_an_unknown_service_type_is_a_usage_error(repo: Path) -> None:
    ran = run_cli("plan", "--service-type", "authorisation")
    assert ran.code == 2
    assert ran.stderr == ("error: --service-type 'authorisation': no such service type; choose from authorization, "
                          "reservation\n")


def test_service_type_cannot_narrow_a_saved_plan(repo: Path) -> None:
    assert run_cli("plan", "--out", "plan.json").code == 0
    ran = run_cli("apply", "plan.json", "--service-type", "authorization")
    assert ran.code == 2 and "--service-type cannot narrow a saved plan" in ran.stderr


# --- progress in logs -----------------------------------------------------------------------------------------------

class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_without_a_terminal_is_a_line_every_few_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    clock = _Clock()
    line = ProgressLine(False, "reading qa", tty=False, interval=5.0, clock=clock)
    for done in range(1, 101):
        clock.now += 0.2  # 100 partners, 0.2 s each: 20 s
        line(done, 100)
    line.finish()
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["reading qa: 25/100", "reading qa: 50/100", "reading qa: 75/100", "reading qa: 100/100"]
    assert all("\r" not in entry and "\033" not in entry for entry in lines)


def test_progress_without_a_terminal_ends_with_the_final_count(capsys: pytest.CaptureFixture[str]) -> None:
    clock = _Clock()
    line = ProgressLine(False, "applying to qa", tty=False, interval=5.0, clock=clock)
    clock.now += 6
    line(1, 3)
    line(2, 3)
    line(3, 3)
    line.finish()
    assert capsys.readouterr().err == "applying to qa: 1/3\napplying to qa: 3/3\n"


def test_a_quick_or_quiet_operation_logs_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    clock = _Clock()
    quick = ProgressLine(False, "reading qa", tty=False, interval=5.0, clock=clock)
    quick(1, 1)
    quick.finish()
    quiet = ProgressLine(True, "reading qa", tty=False, interval=5.0, clock=clock)
    clock.now += 10
    quiet(1, 1)
    quiet.finish()
    assert capsys.readouterr().err == ""


def test_progress_on_a_terminal_is_rewritten_in_place(capsys: pytest.CaptureFixture[str]) -> None:
    clock = _Clock()
    line = ProgressLine(False, "reading qa", tty=True, clock=clock)
    clock.now += 1
    line(1, 2)
    line(2, 2)
    line.finish()
    assert capsys.readouterr().err == "\rreading qa: 1/2\rreading qa: 2/2\r\033[K"


# --- singular and plural --------------------------------------------------------------------------------------------

def test_one_service_type_checked(repo: Path) -> None:
    assert run_cli("apply", "--partner", "DE-8EO", "--auto-approve").code == 0
    ran = run_cli("plan", "--partner", "DE-8EO")
    assert ran.stdout == "No changes in sandbox: the portal matches the partner files (1 service type checked).\n"


def test_apply_one_change(repo: Path) -> None:
    ran = run_cli("apply", "--partner", "DE-8EO", input="yes\n", env=PIPED)
    assert ran.code == 0, ran.output
    assert "Apply 1 change to sandbox?" in ran.stderr
