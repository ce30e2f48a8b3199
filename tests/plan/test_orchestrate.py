"""apply_environment and plan_environment without click: what apply asks, shows, refuses and reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hbsdeploy.apply.audit import read_audit
from hbsdeploy.apply.orchestrate import ApplyCancelled, ApplyReport, ApplyRequest, apply_environment, resolve_target
from hbsdeploy.apply.run import ApplyResult, ChangeResult, StalePlan, Status
from hbsdeploy.check.validate import files_declaring, validate
from hbsdeploy.errors import HbsError, InputError, Problem, UsageError
from hbsdeploy.load.config import Config, Environment, load_config
from hbsdeploy.plan.build import Progress, plan_environment
from hbsdeploy.plan.model import Change, Plan

CONFIG = """\
default_environment: sandbox
environments:
  sandbox:
    portal: local
  qa:
    portal: manual
  prod:
    portal: {prod}
    protected: true
apply:
  max_disable_fraction: 0.25
  parallelism: 4
"""


class Script:
    """ApplyHooks that answer from a script and record, in order, what apply showed and asked."""

    def __init__(self, confirm: bool = True, done: tuple[bool | None, ...] = ()) -> None:
        self.calls: list[str] = []
        self.warnings: list[Problem] = []
        self.confirm = confirm
        self.done = done  # per service type of a manual portal; None stops asking (Ctrl-C)

    def warn(self, problems: list[Problem]) -> None:
        self.calls.append("warn")
        self.warnings += problems

    @contextmanager
    def progress(self, what: str) -> Iterator[Progress]:
        self.calls.append(f"progress {what}")
        yield lambda done, total: None

    def note(self, message: str) -> None:
        self.calls.append(f"note {message}")

    def show_plan(self, plan: Plan) -> None:
        self.calls.append(f"show plan ({len(plan.changes)} changes)")

    def confirm_apply(self, environment: Environment, plan: Plan) -> bool:
        self.calls.append(f"confirm {environment.name}")
        return self.confirm

    def confirm_record(self, environment: Environment, plan: Plan) -> bool:
        self.calls.append(f"confirm record {environment.name}")
        return self.confirm

    def show_steps(self, plan: Plan, environment: Environment) -> None:
        self.calls.append(f"show steps for {environment.name}")

    def change_confirmer(self) -> Callable[[Change], bool]:
        self.calls.append("change confirmer")
        answers = iter(self.done)

        def confirm(change: Change) -> bool:
            self.calls.append(f"done? {change.partner_id}/{change.service_type}")
            answer = next(answers)
            if answer is None:
                raise KeyboardInterrupt
            return answer

        return confirm


def _config(repo: Path, prod: str = "local") -> Config:
    (repo / "hbsdeploy.yaml").write_text(CONFIG.format(prod=prod))
    return load_config(repo / "hbsdeploy.yaml")


@pytest.fixture
def config(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(repo_copy)
    return _config(repo_copy)


def _saved_plan(config: Config, environment: str, path: Path) -> Path:
    plan = plan_environment(config, config.environment(environment), parallelism=2, hooks=Script())
    path.write_text(plan.to_json())
    return path


def _audit(config: Config) -> list[str]:
    return [entry["result"] for entry in read_audit(config.state_dir / "audit.jsonl")]


def test_a_plan_made_now_is_shown_then_confirmed_then_applied(config: Config) -> None:
    hooks = Script()
    report = apply_environment(config, ApplyRequest(), hooks)
    assert hooks.calls == ["warn", "progress reading sandbox", "show plan (4 changes)", "confirm sandbox",
                           "progress applying to sandbox"]
    assert report.ok and not report.interrupted and report.next_step() is None
    assert report.lines()[-1] == "Apply: 4 applied, 0 failed, 0 not attempted."
    assert "      applied: DE*A36 / authorization (enable)" in report.lines()
    assert _audit(config) == ["applied"] * 4

    again = Script()
    nothing = apply_environment(config, ApplyRequest(), again)
    assert again.calls == ["warn", "progress reading sandbox", "show plan (0 changes)"]  # nothing to ask about
    assert nothing.result is None and nothing.ok and nothing.lines() == []


def test_a_refusal_writes_nothing(config: Config) -> None:
    with pytest.raises(ApplyCancelled, match="apply cancelled: nothing was written"):
        apply_environment(config, ApplyRequest(), Script(confirm=False))
    assert _audit(config) == []
    still = plan_environment(config, config.environment("sandbox"), parallelism=2, hooks=Script())
    assert len(still.changes) == 4


def test_auto_approve_asks_nothing(config: Config) -> None:
    hooks = Script(confirm=False)
    report = apply_environment(config, ApplyRequest(auto_approve=True, partner_ids=("DE*A36",)), hooks)
    assert "confirm sandbox" not in hooks.calls
    assert report.ok and [c.partner_id for c in report.plan.changes] == ["DE*A36", "DE*A36"]


def test_a_saved_plan_is_applied_without_a_question_and_refused_once_stale(config: Config, tmp_path: Path) -> None:
    plan_file = _saved_plan(config, "sandbox", tmp_path / "sandbox.plan.json")
    hooks = Script(confirm=False)
    report = apply_environment(config, ApplyRequest(plan_file=plan_file), hooks)
    assert hooks.calls == ["progress applying to sandbox"]  # reviewed already: neither shown nor asked
    assert report.ok and len(report.plan.changes) == 4
    with pytest.raises(StalePlan, match="the portal changed since the plan was made"):
        apply_environment(config, ApplyRequest(plan_file=plan_file), Script())
    assert _audit(config) == ["applied"] * 4


def test_requests_are_refused_before_the_portal_is_read(config: Config, tmp_path: Path) -> None:
    plan_file = _saved_plan(config, "sandbox", tmp_path / "sandbox.plan.json")
    prod_file = _saved_plan(config, "prod", tmp_path / "prod.plan.json")
    refused: list[tuple[ApplyRequest, type[HbsError], str]] = [
        (ApplyRequest(plan_file=plan_file, partner_ids=("DE*A36",)), UsageError, "--partner cannot narrow"),
        (ApplyRequest(plan_file=plan_file, service_types=("authorization",)), UsageError,
         "--service-type cannot narrow"),
        (ApplyRequest(checksum="sha256:00"), UsageError, "--checksum needs a PLANFILE"),
        (ApplyRequest(plan_file=plan_file, environment="qa"), HbsError, "is a plan for 'sandbox', not 'qa'"),
        (ApplyRequest(plan_file=prod_file), UsageError, "name it with --env prod"),
        (ApplyRequest(plan_file=plan_file, checksum="sha256:00"), HbsError, "is not the reviewed sha256:00"),
    ]
    for request, error, message in refused:
        with pytest.raises(error, match=message):
            resolve_target(config, request)
        with pytest.raises(error, match=message):
            apply_environment(config, request, Script())
    assert _audit(config) == []
    env, saved = resolve_target(config, ApplyRequest(environment="prod"))  # named: allowed
    assert (env.name, saved) == ("prod", None)


def test_a_protected_environment_is_confirmed_by_its_hooks(config: Config) -> None:
    hooks = Script(confirm=False)
    with pytest.raises(ApplyCancelled):
        apply_environment(config, ApplyRequest(environment="prod"), hooks)
    assert hooks.calls[-1] == "confirm prod"


def test_a_manual_portal_shows_the_steps_and_records_what_was_confirmed(config: Config) -> None:
    hooks = Script(done=(True, False, True, True))
    report = apply_environment(config, ApplyRequest(environment="qa"), hooks)
    assert hooks.calls[2:5] == ["show plan (4 changes)", "show steps for qa", "change confirmer"]
    assert "confirm qa" not in hooks.calls  # each service type is confirmed instead
    assert sum(call.startswith("done? ") for call in hooks.calls) == 4
    assert report.lines()[-2] == "Apply: 3 applied, 0 failed, 1 not attempted."
    assert report.lines()[-1].startswith("Recorded in state/qa.yaml: commit it")
    assert not report.ok and not report.interrupted
    assert report.next_step() == "Run `hbsdeploy apply --env qa` again to finish: it plans what remains."
    assert _audit(config).count("applied") == 3


def test_a_manual_apply_interrupted_at_a_question_still_reports(config: Config) -> None:
    report = apply_environment(config, ApplyRequest(environment="qa"), Script(done=(True, None)))
    assert report.interrupted and not report.ok
    assert report.lines()[-2] == "Apply: 1 applied, 0 failed, 3 not attempted."


def test_a_manual_portal_never_takes_auto_approve_as_a_confirmation(config: Config) -> None:
    # Issue 12, scenario 1: --auto-approve recorded every step as "confirmed by the operator" although nobody did any.
    hooks = Script(confirm=False)
    with pytest.raises(UsageError, match="--auto-approve never records a step as done"):
        apply_environment(config, ApplyRequest(environment="qa", auto_approve=True), hooks)
    assert hooks.calls == [] and _audit(config) == []


def test_a_manual_portal_is_never_applied_from_ci(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    hooks = Script(done=(True, True, True, True))
    with pytest.raises(HbsError, match="CI never runs `hbsdeploy apply` on it"):
        apply_environment(config, ApplyRequest(environment="qa"), hooks)
    assert hooks.calls == [] and _audit(config) == []


def test_a_protected_manual_portal_asks_even_for_a_saved_plan(repo_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.chdir(repo_copy)
    config = _config(repo_copy, prod="manual")
    plan_file = _saved_plan(config, "prod", tmp_path / "prod.plan.json")
    hooks = Script(confirm=False)
    with pytest.raises(ApplyCancelled):
        apply_environment(config, ApplyRequest(plan_file=plan_file, environment="prod"), hooks)
    assert hooks.calls == ["confirm prod"]
    assert _audit(config) == []


def test_the_report_of_a_failed_apply(config: Config) -> None:
    plan = plan_environment(config, config.environment("sandbox"), ("DE*A36",), parallelism=2, hooks=Script())
    first, second = plan.changes
    result = ApplyResult((ChangeResult(first, Status.FAILED, "portal 'sandbox': refused"),
                          ChangeResult(second, Status.APPLIED)), audit_error=None)
    report = ApplyReport("sandbox", plan, result)
    assert report.lines() == ["       failed: DE*A36 / authorization (enable): portal 'sandbox': refused",
                              "      applied: DE*A36 / reservation (enable)",
                              "Apply: 1 applied, 1 failed, 0 not attempted."]
    assert not report.ok
    assert report.next_step() == "Run `hbsdeploy apply --env sandbox` again to finish: it plans what remains."
    applied = ApplyResult(tuple(ChangeResult(c, Status.APPLIED) for c in plan.changes), audit_error="disk full")
    assert not ApplyReport("sandbox", plan, applied).ok  # applied, but not in the audit log


def test_plan_environment_hands_validation_warnings_to_its_hooks(config: Config, repo_copy: Path) -> None:
    partner = repo_copy / "partners" / "example-cpo.yaml"
    text = partner.read_text()
    assert text.count("broadcast_request: false") == 1
    partner.write_text(text.replace("broadcast_request: false", "broadcast_request: true"))
    hooks = Script()
    plan = plan_environment(config, config.environment("sandbox"), ("DE*A36",), parallelism=2, hooks=hooks)
    assert [p.rule for p in hooks.warnings] == ["cpo-broadcast"]
    assert hooks.calls == ["warn", "progress reading sandbox"]  # warned before the portal is read
    assert len(plan.changes) == 2


def test_plan_of_one_partner_loads_only_its_file(config: Config, repo_copy: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """--partner validates the file that declares the partner; another file's error is validate's (and a full
    plan's) to report, as are the cross-file checks."""
    import hbsdeploy.check.validate as validate_module
    from hbsdeploy.check.validate import validate

    (repo_copy / "partners" / "broken.yaml").write_text('name: Broken\nrole: cpo\noperator_id: "DE*Z99"\n'
                                                        "environments: {}\nservice_types: yes\n")
    loaded: list[str] = []
    real = validate_module.check_partner_file

    def counting(path: Path, *args: object) -> object:
        loaded.append(path.name)
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(validate_module, "check_partner_file", counting)
    plan = plan_environment(config, config.environment("sandbox"), ("DE*A36",), parallelism=2, hooks=Script())
    assert loaded == ["example-cpo.yaml"] and {c.partner_id for c in plan.changes} == {"DE*A36"}
    with pytest.raises(HbsError, match="broken.yaml"):
        plan_environment(config, config.environment("sandbox"), parallelism=2, hooks=Script())
    assert [p.rule for p in validate(config).errors] != []
    # the ID written in a way the line scan does not read (a YAML escape): every file is loaded to find it
    (repo_copy / "partners" / "broken.yaml").unlink()
    emp = repo_copy / "partners" / "example-emp.yaml"
    emp.write_text(emp.read_text().replace('provider_id: "DE-8EO"', 'provider_id: "DE\\x2D8EO"'))
    loaded.clear()
    plan = plan_environment(config, config.environment("sandbox"), ("DE-8EO",), parallelism=2, hooks=Script())
    assert sorted(loaded) == sorted(p.name for p in (repo_copy / "partners").glob("*.yaml"))
    assert {c.partner_id for c in plan.changes} == {"DE-8EO"}



@pytest.mark.parametrize("written", ["DEA36", "de*a36", "DE*A36"])
@pytest.mark.parametrize("asked", ["DE*A36", "DEA36"])
def test_plan_of_one_partner_still_refuses_its_duplicate_in_any_spelling(config: Config, repo_copy: Path,
                                                                         written: str, asked: str) -> None:
    """Issue 16 review: the line scan of `--partner` matched the ID as written, so a second file declaring the same
    OperatorID another way was not loaded and the duplicate went unreported."""
    source = (repo_copy / "partners" / "example-cpo.yaml").read_text()
    assert 'operator_id: "DE*A36"' in source
    (repo_copy / "partners" / "copy.yaml").write_text(source.replace('"DE*A36"', f'"{written}"'))
    with pytest.raises(InputError) as error:
        plan_environment(config, config.environment("sandbox"), (asked,), parallelism=2, hooks=Script())
    assert [p.rule for p in error.value.problems] == ["duplicate-partner-id"]


@pytest.mark.parametrize("line", ['"operator_id": "DE*A36"', "operator_id: !!str DE*A36", "operator_id: &id DE*A36",
                                  "operator_id:\n  DE*A36", '"operator\\x5Fid": "DE*A36"'],
                         ids=["quoted-key", "tag", "anchor", "next-line", "escaped-key"])
def test_plan_of_one_partner_refuses_a_duplicate_whose_id_line_the_scan_cannot_read(
        config: Config, repo_copy: Path, line: str) -> None:
    """Was: a second file declaring the same OperatorID in YAML the line scan does not read (a quoted or escaped key,
    a tag, an anchor, the value on the next line) was left out of `plan --partner`, which planned one of the two
    files while validate refused both."""
    source = (repo_copy / "partners" / "example-cpo.yaml").read_text()
    (repo_copy / "partners" / "copy.yaml").write_text(source.replace('operator_id: "DE*A36"', line))
    assert [p.rule for p in validate(config).errors] == ["duplicate-partner-id"]
    with pytest.raises(InputError) as error:
        plan_environment(config, config.environment("sandbox"), ("DE*A36",), parallelism=2, hooks=Script())
    assert [p.rule for p in error.value.problems] == ["duplicate-partner-id"]


def test_plan_of_one_partner_still_skips_a_file_that_names_the_key_only_in_a_comment(config: Config,
                                                                                      repo_copy: Path) -> None:
    """The files the scan cannot read are loaded; one whose only other mention of the key is a comment line is not."""
    source = (repo_copy / "partners" / "example-emp.yaml").read_text()
    (repo_copy / "partners" / "example-emp.yaml").write_text("# operator_id: none, an EMP\n" + source)
    assert files_declaring(config, ["DE*A36"]) == [repo_copy / "partners" / "example-cpo.yaml"]
