"""The CI examples pass zizmor (offline), actionlint (jactionlint, with shellcheck) and check-jsonschema's GitHub
workflow and GitLab CI schemas, and keep the promises docs/ci.md makes (issue 12, scenario 7): read-only credentials
for plans, write secrets only in the protected environments' apply jobs, applies queued and never dropped, actions
pinned by commit, hbsdeploy from git at a reviewed revision, QA then PROD, the audit log kept."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / "examples" / "github-actions" / "hbsdeploy.yml"
GITLAB = REPO / "examples" / "gitlab-ci" / ".gitlab-ci.yml"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow

OLD_STYLE = """\
name: old
on: [push]
permissions:
  contents: read
jobs:
  plan:
    runs-on: ubuntu-latest
    env:
      HBSDEPLOY_PROD_TOKEN: ${{ secrets.HBSDEPLOY_PROD_TOKEN }}
    steps:
      - uses: actions/checkout@v4
      - run: python -m pip install hbsdeploy==0.1.0
"""


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    executable = BIN / tool
    assert executable.exists(), f"{tool} is not installed: pip install -e '.[test]'"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    return subprocess.run([str(executable), *args], capture_output=True, text=True, timeout=120, env=env,
                          cwd=REPO)


def _github() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(GITHUB.read_text(encoding="utf-8"))
    return document


# --- the tools -------------------------------------------------------------------------------------------------------

def test_zizmor_offline_finds_nothing_even_as_an_auditor() -> None:
    ran = _run("zizmor", "--offline", "--no-progress", "--persona", "auditor", str(GITHUB))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "No findings to report" in ran.stdout


def test_zizmor_finds_what_the_old_example_had(tmp_path: Path) -> None:
    # Before: secrets in a job without an environment, actions pinned by tag (issue 12, scenario 7).
    old = tmp_path / "old.yml"
    old.write_text(OLD_STYLE, encoding="utf-8")
    ran = _run("zizmor", "--offline", "--no-progress", "--persona", "auditor", "--format", "json", str(old))
    assert ran.returncode != 0
    found = {finding["ident"] for finding in json.loads(ran.stdout)}
    assert {"secrets-outside-env", "unpinned-uses"} <= found
    linted = _run("jactionlint", str(old))
    assert linted.returncode != 0 and "[unpinned-uses]" in linted.stdout


def test_actionlint_with_shellcheck_finds_nothing() -> None:
    ran = _run("jactionlint", f"--shellcheck={BIN / 'shellcheck'}", str(GITHUB))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "shellcheck was not found" not in ran.stdout + ran.stderr


@pytest.mark.parametrize("path, schema", [(GITHUB, "vendor.github-workflows"), (GITLAB, "vendor.gitlab-ci")],
                         ids=["github", "gitlab"])
def test_the_builtin_schemas_of_check_jsonschema_accept_the_examples(path: Path, schema: str) -> None:
    ran = _run("check-jsonschema", "--builtin-schema", schema, str(path))
    assert ran.returncode == 0, ran.stdout + ran.stderr


# --- the promises ----------------------------------------------------------------------------------------------------

def test_every_action_is_pinned_by_commit_with_its_tag_as_a_comment() -> None:
    uses = [line.strip() for line in GITHUB.read_text(encoding="utf-8").splitlines() if "uses:" in line]
    assert len(uses) >= 8
    for line in uses:
        assert re.fullmatch(r"- uses: [\w.-]+/[\w.-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+", line) \
            or re.fullmatch(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+", line), line


def test_secrets_only_in_jobs_of_an_environment_and_write_secrets_only_in_apply_jobs() -> None:
    jobs = _github()["jobs"]
    for name, job in jobs.items():
        text = json.dumps(job)
        if "secrets." not in text:
            continue
        environment = str(job.get("environment", ""))
        assert environment, f"job {name} reads secrets outside an environment"
        if name.startswith("apply-"):
            assert environment == f"hbsdeploy-{name.removeprefix('apply-')}"
        else:  # pull-request plans and the drift check: the read-only environments
            assert environment.endswith("-plan"), f"job {name} would get a write token ({environment})"
    assert "secrets." not in json.dumps(jobs["validate"])


def test_applies_are_queued_never_cancelled_and_prod_follows_qa() -> None:
    workflow = _github()
    assert workflow["concurrency"]["queue"] == "max" and workflow["concurrency"]["cancel-in-progress"] is False
    jobs = workflow["jobs"]
    for name in ("apply-qa", "apply-prod"):
        assert jobs[name]["concurrency"] == {"group": f"hbsdeploy-{name}", "cancel-in-progress": False,
                                             "queue": "max"}
    assert "apply-qa" in jobs["apply-prod"]["needs"]
    summary = json.dumps(jobs["apply-qa"]["steps"])
    assert "supersedes the apply of" in summary  # merges whose apply did not run are named, never dropped silently
    gitlab = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))
    assert gitlab[".hbsdeploy-apply"]["resource_group"] == "hbsdeploy-apply-$TARGET"
    assert gitlab[".hbsdeploy-apply"]["interruptible"] is False
    assert gitlab["hbsdeploy:apply:prod"]["needs"] == ["hbsdeploy:apply:qa"]


def test_the_audit_log_is_kept_as_an_artifact_even_when_apply_fails() -> None:
    steps = _github()["jobs"]["apply-qa"]["steps"]
    (keep,) = [step for step in steps if step.get("name") == "Keep the audit log"]
    assert keep["if"] == "always()" and keep["with"]["path"] == ".hbsdeploy/audit.jsonl"
    artifacts = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))[".hbsdeploy-apply"]["artifacts"]
    assert artifacts["when"] == "always" and ".hbsdeploy/audit.jsonl" in artifacts["paths"]


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_hbsdeploy_comes_from_git_at_a_given_revision_never_from_a_package_name(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "hbsdeploy==" not in text and "HBSDEPLOY_PIP_SPEC" not in text
    assert '"hbsdeploy @ git+$HBSDEPLOY_GIT@$HBSDEPLOY_REV"' in text
    assert not re.search(r"HBSDEPLOY_REV:[ \t]*[\"']?[\w.]+", text.replace("${{ vars.HBSDEPLOY_REV }}", "")), \
        "the example names a revision that may not exist"
    assert "--auto-approve" not in text  # a reviewed plan file needs no confirmation, a manual step is never faked


def _jobs_that_run(event: str, inputs: dict[str, str]) -> set[str]:
    """Which jobs of the GitHub example run for `event`, by GitHub's rules: a job whose `needs` did not all succeed is
    skipped unless its `if:` calls a status function; then its `if:` decides (every job succeeding when it runs)."""
    jobs = _github()["jobs"]
    context = {"github.event_name": event, "github.ref": "refs/heads/main"}
    context.update({f"inputs.{key}": value for key, value in inputs.items()})
    results: dict[str, str] = {}
    while len(results) < len(jobs):
        for name, job in jobs.items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if name in results or any(n not in results for n in needs):
                continue
            condition = str(job.get("if", "true"))
            python = re.sub(r"needs\.([\w-]+)\.result", lambda m: repr(results[m.group(1)]), condition)
            python = re.sub(r"(github|inputs)\.[\w]+", lambda m: repr(context.get(m.group(0), "")), python)
            python = python.replace("!cancelled()", "True").replace("always()", "True")
            python = python.replace("&&", " and ").replace("||", " or ").replace("!=", " != ").replace("true", "True")
            status_function = "cancelled()" in condition or "always()" in condition
            runs = (status_function or all(results[n] == "success" for n in needs)) and eval(python)  # noqa: S307
            results[name] = "success" if runs else "skipped"
    return {name for name, result in results.items() if result == "success"}


@pytest.mark.parametrize("event, inputs, expected", [
    ("push", {}, {"validate", "apply-qa", "apply-prod"}),
    ("workflow_dispatch", {"environment": "qa", "plan_run_id": "123"}, {"validate", "apply-qa"}),
    ("workflow_dispatch", {"environment": "prod", "plan_run_id": "123"}, {"validate", "apply-prod"}),
    ("workflow_dispatch", {"environment": "prod", "plan_run_id": ""}, {"validate"}),
])
def test_a_manual_run_applies_the_given_plan_to_the_environment_named(event: str, inputs: dict[str, str],
                                                                      expected: set[str]) -> None:
    """The recovery path docs/ci.md describes (apply a given run's plan) must reach its apply job: a job whose needs
    were skipped is skipped too unless its `if:` says otherwise (a review found every job skipped on a manual run)."""
    assert _jobs_that_run(event, inputs) >= expected
    assert not ({"apply-qa", "apply-prod"} - expected) & _jobs_that_run(event, inputs)
