"""Hostile input: every file in tests/data/hostile/ gets a clear, located error or is rendered inert; nothing executes,
nothing escapes the repository, no traceback, and no message prints a terminal escape or bidi character raw.

partners/*.yaml are validated one at a time against tests/data/hostile/hbsdeploy.yaml (sandbox, qa, protected prod);
the `.expected` beside each holds the exact problem lines and, when the file has no error, the payloads it renders
(after a `--- rendered payloads ---` line): hostile values stand in them verbatim, as data. configs/*.yaml are loaded
as hbsdeploy.yaml; the `.expected` holds the problem lines, or for an accepted config what it resolved to. Cases that
cannot sit in the corpus as files (enormous, symbolic links, file names with escapes) are generated below.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hbsdeploy.check.validate import validate
from hbsdeploy.errors import HbsError, InputError
from hbsdeploy.load.config import Config, load_config
from hbsdeploy.portal import portal_label
from hbsdeploy.render.payloads import Renderer, canonical_json, payloads_document
from tests.helpers import check_golden, working_directory
from tests.security.helpers import (
    CONFIGS,
    HOSTILE,
    MARKER,
    PARTNERS,
    RENDERED,
    REPO,
    unsafe_characters,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of tests/data/hostile with the repository's templates, as the working directory of each test."""
    root = tmp_path_factory.mktemp("hostile") / "repo"
    shutil.copytree(HOSTILE, root)
    shutil.copytree(REPO / "templates", root / "templates")
    yield root
    assert not (root / MARKER).exists(), "a command in a hostile file ran"


def _id(path: Path) -> str:
    return path.stem


def test_the_corpus_holds_at_least_50_files_each_with_its_expected_outcome() -> None:
    assert len(PARTNERS) >= 40 and len(CONFIGS) >= 15
    for folder in (HOSTILE / "partners", HOSTILE / "configs"):
        stems = {p.stem for p in folder.glob("*.yaml")}
        assert stems == {p.stem for p in folder.glob("*.expected")}, f"{folder.name}: a file without .expected"


def partner_outcome(config: Config, relative: Path) -> str:
    """Problem lines of one partner file, then, when it has no error, the payloads it renders."""
    report = validate(config, [relative])
    lines = [problem.format() for problem in report.problems]
    text = "".join(f"{line}\n" for line in lines)
    if not report.errors:
        (partner,) = report.partners
        environments = [config.environments[name] for name in partner.environments]
        rendered = Renderer(config).render_all([partner], environments)
        for item in rendered:  # every value the file sets stands verbatim in the payload, as data
            resolved = partner.resolve(item.environment)[item.service_type].values
            assert {k: item.payload[k] for k in resolved if k in item.payload} == {
                k: v for k, v in resolved.items() if k in item.payload}
        text += f"{RENDERED}\n{canonical_json(payloads_document(rendered))}"
    return text


@pytest.mark.parametrize("path", PARTNERS, ids=_id)
def test_hostile_partner_file(corpus: Path, path: Path) -> None:
    with working_directory(corpus):
        outcome = partner_outcome(load_config(Path("hbsdeploy.yaml")), Path("partners") / path.name)
    check_golden(path.with_suffix(".expected"), outcome)
    problems = outcome.split(RENDERED)[0]
    assert unsafe_characters(problems) == [], "a message prints a control or bidi character raw"
    assert "hunter2" not in problems
    assert not (corpus / MARKER).exists()


def config_outcome(relative: Path) -> str:
    """Problem lines of one config, or what an accepted config resolved to (portal labels as messages show them)."""
    try:
        config = load_config(relative)
    except InputError as exc:
        return "".join(f"{problem.format()}\n" for problem in exc.problems)
    root = config.root

    def shown(path: Path | None) -> str | None:  # relative to the config's folder as written; absolute as written
        text = None if path is None else str(path)
        return text[len(str(root)) + 1:] if text and text.startswith(str(root) + os.sep) else text

    summary = {
        "partners": shown(config.partners_dir), "templates": shown(config.templates_dir),
        "state_dir": shown(config.state_dir),
        "environments": {name: {"label": portal_label(env), "token_env": env.token_env,
                                "state": shown(env.state_file), "client_cert": shown(env.client_cert),
                                "client_key": shown(env.client_key), "ca_bundle": shown(env.ca_bundle)}
                         for name, env in sorted(config.environments.items())},
    }
    return "accepted: " + json.dumps(summary, indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("path", CONFIGS, ids=_id)
def test_hostile_config_file(corpus: Path, path: Path) -> None:
    with working_directory(corpus):
        outcome = config_outcome(Path("configs") / path.name)
    check_golden(path.with_suffix(".expected"), outcome)
    assert unsafe_characters(outcome) == []
    assert "hunter2" not in outcome
    assert not (corpus / MARKER).exists()


# --- through the command line, in a child process: exit codes, and no traceback -------------------------------------

CLI_PARTNER_SAMPLE = ["yaml-alias-billion-laughs", "yaml-tag-python-object-apply", "yaml-raw-escape-character",
                      "escape-sequence-in-name", "bidi-override-in-url", "ip-decimal-hex-octal", "url-credentials",
                      "path-certificate-traversal", "homograph-cyrillic-host"]
CLI_CONFIG_SAMPLE = ["path-state-dir-parent", "portal-credentials", "token-env-foreign-secret", "yaml-python-tag",
                     "environment-name-escape"]


def hbsdeploy(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    env.pop("HBSDEPLOY_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "hbsdeploy", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=60)


def test_cli_sample_prints_the_expected_lines_and_no_traceback(corpus: Path) -> None:
    files = [f"partners/{name}.yaml" for name in CLI_PARTNER_SAMPLE]
    done = hbsdeploy(corpus, "validate", *files)
    assert done.returncode == 1 and done.stderr == ""
    expected = [line for name in CLI_PARTNER_SAMPLE
                for line in (HOSTILE / "partners" / f"{name}.expected").read_text(encoding="utf-8")
                .split(RENDERED)[0].splitlines()]
    assert sorted(done.stdout.splitlines()[:-1]) == sorted(expected)
    assert unsafe_characters(done.stdout) == []
    for name in CLI_CONFIG_SAMPLE:
        done = hbsdeploy(corpus, "--config", f"configs/{name}.yaml", "validate")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Traceback" not in done.stderr and unsafe_characters(done.stdout + done.stderr) == []
        expected = (HOSTILE / "configs" / f"{name}.expected").read_text(encoding="utf-8").splitlines()
        assert done.stdout.splitlines()[:-1] == expected
        assert "hunter2" not in done.stdout + done.stderr
    assert not (corpus / MARKER).exists()


def test_cli_renders_hostile_values_inert(tmp_path: Path) -> None:
    """`hbsdeploy render` of the inert partners alone gives exactly the payloads in their .expected files."""
    inert = ["inert-template-syntax-in-url", "inert-json-breakout-in-url", "inert-backslashes-and-quotes-in-url",
             "inert-template-syntax-in-name", "inert-html-and-markdown-in-name"]
    repo = tmp_path / "repo"
    (repo / "partners").mkdir(parents=True)
    shutil.copy(HOSTILE / "hbsdeploy.yaml", repo / "hbsdeploy.yaml")
    shutil.copytree(REPO / "templates", repo / "templates")
    expected: dict[str, dict[str, object]] = {}
    for name in inert:
        shutil.copy(HOSTILE / "partners" / f"{name}.yaml", repo / "partners" / f"{name}.yaml")
        payloads = json.loads((HOSTILE / "partners" / f"{name}.expected").read_text(encoding="utf-8")
                              .split(RENDERED + "\n")[1])
        for env, partners in payloads.items():
            expected.setdefault(env, {}).update(partners)
    done = hbsdeploy(repo, "render")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
    plan = hbsdeploy(repo, "plan")
    assert plan.returncode == 0, plan.stderr
    assert "{{ 7*7 }} {% for x in range(10**9) %}" in plan.stdout  # the name, verbatim: never evaluated
    assert "https://oicp.example.com/{{7*7}}/{{settings.__class__}}" in plan.stdout
    assert "</summary><script>" in plan.stdout


def test_plan_text_never_prints_a_bidi_or_escape_character_of_a_name_raw(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "partners").mkdir(parents=True)
    shutil.copy(HOSTILE / "hbsdeploy.yaml", repo / "hbsdeploy.yaml")
    shutil.copytree(REPO / "templates", repo / "templates")
    shutil.copy(HOSTILE / "partners" / "bidi-in-name.yaml", repo / "partners" / "bidi-in-name.yaml")
    plan = hbsdeploy(repo, "plan")
    assert plan.returncode == 0, plan.stderr
    assert "warning[name-invisible-characters]" in plan.stderr and unsafe_characters(plan.stderr) == []
    assert unsafe_characters(plan.stdout) == []


# --- generated: enormous values ---------------------------------------------------------------------------------

PARTNER_HEAD = "name: {name}\nrole: cpo\noperator_id: \"DE*H01\"\nenvironments: {{sandbox: }}\nservice_types:\n" \
               "  authorization:\n    online_request: true\n    service_url: {url}\n    client_certification: true\n"


def test_a_100_kb_url_and_a_1_mb_name_are_refused_without_being_echoed(corpus: Path, tmp_path: Path) -> None:
    url = "https://oicp.example.com/" + "a" * 100_000
    name = "N" * 1_000_000
    path = tmp_path / "enormous.yaml"
    config = load_config(corpus / "hbsdeploy.yaml")
    path.write_text(PARTNER_HEAD.format(name="Enormous URL", url=url), encoding="utf-8")
    with working_directory(tmp_path):
        report = validate(config, [Path("enormous.yaml")])
    assert [p.format() for p in report.problems] == [
        "enormous.yaml:8:18: error[value-too-long]: service_url is longer than 2048 characters"]
    path.write_text(PARTNER_HEAD.format(name=name, url="https://oicp.example.com"), encoding="utf-8")
    with working_directory(tmp_path):
        report = validate(config, [Path("enormous.yaml")])
    assert [p.format() for p in report.problems] == [
        "enormous.yaml:1:7: error[value-too-long]: name is longer than 200 characters"]
    path.write_text(PARTNER_HEAD.format(name=name, url=url), encoding="utf-8")
    with working_directory(tmp_path):
        report = validate(load_config(corpus / "hbsdeploy.yaml"), [Path("enormous.yaml")])
    assert [p.format() for p in report.problems] == [
        "enormous.yaml:1:1: error[file-too-large]: is larger than 1024 KiB; a partner file is a few lines"]


def test_a_million_short_values_stop_at_the_node_limit(corpus: Path, tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("name: [" + ",".join("x" for _ in range(400_000)) + "]\n", encoding="utf-8")
    with working_directory(tmp_path):
        report = validate(load_config(corpus / "hbsdeploy.yaml"), [Path("many.yaml")])
    assert [p.rule for p in report.problems] == ["yaml-too-large"]


# --- generated: symbolic links out of the repository, file names with escapes ------------------------------------

def _repo(tmp_path: Path, config: str = "") -> Path:
    repo = tmp_path / "repo"
    (repo / "partners").mkdir(parents=True)
    shutil.copytree(REPO / "templates", repo / "templates")
    (repo / "hbsdeploy.yaml").write_text(config or "environments:\n  sandbox:\n    portal: local\n",
                                         encoding="utf-8")
    return repo


def _lines(repo: Path) -> list[str]:
    with working_directory(repo):
        return [p.format() for p in validate(load_config(Path("hbsdeploy.yaml"))).problems]


def test_a_certificate_symlinked_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    outside = tmp_path / "outside.pem"
    outside.write_text("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")
    (repo / "certs").mkdir()
    (repo / "certs" / "user.pem").symlink_to(outside)
    (repo / "certs" / "passwd.pem").symlink_to("/etc/passwd")
    for name in ("user", "passwd"):
        (repo / "partners" / f"{name}.yaml").write_text(
            PARTNER_HEAD.format(name=name, url="https://oicp.example.com").replace("DE*H01", f"DE*{name[:3].upper()}")
            + f"    certificate: user\n    certificate_file: certs/{name}.pem\n", encoding="utf-8")
    assert _lines(repo) == [
        "partners/passwd.yaml:11:23: error[path-escapes-repository]: certificate_file 'certs/passwd.pem' points "
        "outside the repository; keep certificates in the folder of hbsdeploy.yaml or below it",
        "partners/user.yaml:11:23: error[path-escapes-repository]: certificate_file 'certs/user.pem' points outside "
        "the repository; keep certificates in the folder of hbsdeploy.yaml or below it"]


def test_a_partner_file_symlinked_out_of_the_repository_is_refused_unread(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    secret = tmp_path / "secret.yaml"
    secret.write_text("name: [the-secret-value]\n", encoding="utf-8")
    (repo / "partners" / "leak.yaml").symlink_to(secret)
    lines = _lines(repo)
    assert lines == ["partners/leak.yaml:1:1: error[path-escapes-repository]: is a symbolic link to a file outside "
                     "the repository; copy the partner file into the partner folder instead"]
    inside = repo / "shared.yaml"
    inside.write_text(PARTNER_HEAD.format(name="Shared", url="https://oicp.example.com"), encoding="utf-8")
    (repo / "partners" / "leak.yaml").unlink()
    (repo / "partners" / "shared.yaml").symlink_to(inside)  # a link that stays inside is fine
    assert _lines(repo) == []


@pytest.mark.parametrize("key", ["partners", "templates", "state_dir"])
def test_a_config_folder_symlinked_out_of_the_repository_is_refused(tmp_path: Path, key: str) -> None:
    repo = _repo(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo / "linked").symlink_to(outside, target_is_directory=True)
    (repo / "hbsdeploy.yaml").write_text(f"{key}: linked\nenvironments:\n  sandbox:\n    portal: local\n",
                                         encoding="utf-8")
    with working_directory(repo), pytest.raises(InputError) as caught:
        load_config(Path("hbsdeploy.yaml"))
    assert str(caught.value) == (f"hbsdeploy.yaml:1:{len(key) + 3}: error[path-escapes-repository]: {key} 'linked' "
                                 "points outside the folder of hbsdeploy.yaml; use a path relative to that folder "
                                 "and below it")


def test_a_file_name_with_an_escape_sequence_is_shown_escaped(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "partners" / "\x1b[2J\u202eevil.yaml").write_text("name: [\n", encoding="utf-8")
    lines = _lines(repo)
    assert len(lines) == 1 and lines[0].startswith("partners/\\x1b[2J\\u202eevil.yaml:2:1: error[yaml-syntax]")
    done = hbsdeploy(repo, "validate")
    assert done.returncode == 1 and "\\x1b[2J\\u202eevil.yaml" in done.stdout
    assert unsafe_characters(done.stdout + done.stderr) == []


def test_every_command_refuses_a_config_that_escapes(tmp_path: Path) -> None:
    """plan, apply, render and doctor load the same config: none of them writes outside, and each says why."""
    repo = _repo(tmp_path, "state_dir: ../outside-state\nenvironments:\n  sandbox:\n    portal: local\n")
    for args in (["plan"], ["apply", "--auto-approve"], ["render"], ["validate"]):
        done = hbsdeploy(repo, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        output = done.stdout + done.stderr
        assert "error[path-escapes-repository]: state_dir '../outside-state' points outside" in output
        assert "Traceback" not in done.stderr
    doctor = hbsdeploy(repo, "doctor")
    assert doctor.returncode == 1 and "path-escapes-repository" in doctor.stdout
    assert not (tmp_path / "outside-state").exists()


def test_library_errors_are_hbs_errors_not_tracebacks(corpus: Path) -> None:
    """A refused config is an HbsError (one line, exit 1 in the CLI), whichever command loads it."""
    with working_directory(corpus), pytest.raises(HbsError):
        load_config(Path("configs/path-templates-absolute.yaml"))
