"""The hbsdeploy-validate hook, run by the real pre-commit on a sample repository, as a user's config would.

pre-commit installs a hook from a git repository's committed tree, so the test commits a copy of this working
tree's package files (and its .pre-commit-hooks.yaml) into a hook repository, and the sample repository's
.pre-commit-config.yaml names that repository and commit. pre-commit then builds a virtualenv and pip-installs
hbsdeploy from it: the slow part, done once per content. The hook repository and pre-commit's home live under the
pytest temporary root, keyed by a hash of what was copied, so the next session with the same package files reuses
the environment; any change to them builds a new one. (`pre-commit try-repo` would build a new environment on
every call: it keeps its store in a temporary folder.)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "hbsdeploy", "schemas", "templates")
GIT = ("git", "-c", "user.name=hbsdeploy tests", "-c", "user.email=tests@hbsdeploy.invalid",
       "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main")


# A cached environment not used for this long is removed by the next session (each one is tens of megabytes).
STALE_AFTER_SECONDS = 24 * 3600


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def commit_all(folder: Path) -> str:
    """Commit everything in `folder` as a new repository; the commit's id."""
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "test fixture")
    return git(folder, "rev-parse", "HEAD")


def copy_package(target: Path) -> str:
    """Copy this working tree's package files to `target`; a hash of every path and byte copied."""
    target.mkdir()
    for name in PACKAGE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "_data", "*.pyc"))
        elif source.is_file():
            shutil.copy2(source, target / name)
    if not (target / "README.md").exists():  # pyproject.toml names it; a checkout without it cannot build
        (target / "README.md").write_text("# hbsdeploy\n")
    digest = hashlib.sha256(f"{sys.version}|pre-commit {importlib.metadata.version('pre-commit')}".encode())
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(target)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class HookRepository:
    path: Path  # a git repository holding the package files and .pre-commit-hooks.yaml, committed
    rev: str
    home: Path  # PRE_COMMIT_HOME: where pre-commit keeps the hook's environment


def cache_root(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder above each session's temporary folder (pytest keeps it across sessions); with --basetemp, the
    session's own folder (the folder above could be anything)."""
    if config.option.basetemp:
        return tmp_path_factory.getbasetemp() / "hbsdeploy-pre-commit"
    return tmp_path_factory.getbasetemp().parent / "hbsdeploy-pre-commit"


@pytest.fixture(scope="module")
def hooks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> HookRepository:
    """The hook repository for this working tree's package files, made once per content and kept with its
    pre-commit environment; stale ones of other contents are removed."""
    root = cache_root(request.config, tmp_path_factory)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    key = copy_package(staging / "hooks")
    entry = root / key
    if not (entry / "hooks" / ".git").is_dir():
        commit_all(staging / "hooks")
        try:
            staging.rename(entry)  # atomic: a session running at the same time either wins or uses the winner's
        except OSError:
            if not (entry / "hooks" / ".git").is_dir():
                raise
    shutil.rmtree(staging, ignore_errors=True)
    os.utime(entry)  # in use: not stale
    for other in root.iterdir():
        if other != entry and time.time() - other.stat().st_mtime > STALE_AFTER_SECONDS:
            shutil.rmtree(other, ignore_errors=True)
    return HookRepository(entry / "hooks", git(entry / "hooks", "rev-parse", "HEAD"), entry / "home")


def sample_repository(target: Path, hooks: HookRepository) -> Path:
    """The example repository, with a .pre-commit-config.yaml using the hook at the hook repository's commit."""
    target.mkdir()
    shutil.copy2(REPO / "hbsdeploy.yaml", target / "hbsdeploy.yaml")
    for folder in ("partners", "certs", "templates", "schemas"):
        shutil.copytree(REPO / folder, target / folder)
    config = {"repos": [{"repo": str(hooks.path), "rev": hooks.rev, "hooks": [{"id": "hbsdeploy-validate"}]}]}
    (target / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    commit_all(target)
    return target


def pre_commit_run(sample: Path, hooks: HookRepository, *files: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(hooks.home), "PRE_COMMIT_COLOR": "never", "NO_COLOR": "1",
           "GIT_CONFIG_GLOBAL": os.devnull}
    env.pop("HBSDEPLOY_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", "hbsdeploy-validate", "--files", *files],
                          cwd=sample, env=env, capture_output=True, text=True, timeout=600)


def test_the_hook_file_matches_partner_files_and_the_config() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "hbsdeploy-validate"
    assert (hook["entry"], hook["language"], hook["pass_filenames"]) == ("hbsdeploy validate", "python", True)
    files = re.compile(hook["files"])
    for path in ("partners/a.yaml", "partners/b.yml", "partners/sub/c.yaml", "hbsdeploy.yaml", "templates/_payload.j2",
                 "templates/authorization.json.j2", "schemas/partner.schema.json"):
        assert files.search(path), path
    for path in ("other/hbsdeploy.yaml", "partners/a.json", "hbsdeploy.yaml.bak", "schemas/sub/x.json",
                 "docs/templates/a.j2"):
        assert not files.search(path), path


@pytest.mark.slow
def test_pre_commit_runs_the_hook_and_fails_on_a_blank_in_a_service_url(tmp_path: Path,
                                                                        hooks: HookRepository) -> None:
    sample = sample_repository(tmp_path / "sample", hooks)

    good = pre_commit_run(sample, hooks, "partners/example-cpo.yaml", "hbsdeploy.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"^hbsdeploy validate\.+Passed$", good.stdout, re.MULTILINE), good.stdout

    partner = sample / "partners" / "example-cpo.yaml"
    lines = partner.read_text().splitlines(keepends=True)
    (index,) = [i for i, line in enumerate(lines) if "service_url: https://oicp.example-charging.com\n" in line]
    lines[index] = lines[index].replace("example-charging.com", "example charging.com")
    partner.write_text("".join(lines))

    bad = pre_commit_run(sample, hooks, "partners/example-cpo.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(r"^hbsdeploy validate\.+Failed$", bad.stdout, re.MULTILINE), bad.stdout
    assert re.search(rf"^partners/example-cpo\.yaml:{index + 1}:\d+: error\[service-url-whitespace\]: "
                     r"Service URL contains U\+0020 \(SPACE\)", bad.stdout, re.MULTILINE), bad.stdout
    # the hook ran from an environment pre-commit built from the hook repository, not from this interpreter's
    environments = list(hooks.home.glob("repo*/py_env-*/bin/hbsdeploy"))
    assert len(environments) == 1, environments


@pytest.mark.slow
def test_pre_commit_checks_every_partner_and_template_when_the_config_or_a_template_changes(
        tmp_path: Path, hooks: HookRepository) -> None:
    """Issue 15, replayed: each change below passed the hook before; each fails it now, naming the file and line."""
    sample = sample_repository(tmp_path / "sample", hooks)

    # Deleting the qa environment from hbsdeploy.yaml breaks partners/example-cpo.yaml, which is not in the commit.
    config = sample / "hbsdeploy.yaml"
    original = config.read_text()
    start = original.index("  qa:\n")
    config.write_text(original[:start] + original[original.index("  prod:\n"):])
    bad = pre_commit_run(sample, hooks, "hbsdeploy.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    qa_line = (sample / "partners" / "example-cpo.yaml").read_text().splitlines().index("  qa:") + 1
    assert re.search(rf"^partners/example-cpo\.yaml:{qa_line}:3: error\[unknown-environment\]", bad.stdout,
                     re.MULTILINE), bad.stdout
    config.write_text(original)

    # A broken _payload.j2: every template that imports it is broken; reported at its line, relative to the repository.
    payload = sample / "templates" / "_payload.j2"
    text = payload.read_text()
    payload.write_text(text.replace("{%- endmacro -%}", "{%- endmacro"))
    bad = pre_commit_run(sample, hooks, "templates/_payload.j2")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(r"^templates/_payload\.j2:\d+:1: error\[template-syntax\]: template syntax error",
                     bad.stdout, re.MULTILINE), bad.stdout
    assert str(sample) not in bad.stdout
    payload.write_text(text)

    # A template that compiles but cannot render a partner: one problem, at its line, naming a partner.
    template = sample / "templates" / "reservation.json.j2"
    template_text = template.read_text()
    template.write_text(template_text + "{{ settings.no_such_field }}\n")
    bad = pre_commit_run(sample, hooks, "templates/reservation.json.j2")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = [line for line in bad.stdout.splitlines() if "error[template-error]" in line]
    assert len(lines) == 1 and lines[0].startswith("templates/reservation.json.j2:4:1: "), bad.stdout
    assert "(partner partners/example-cpo" in lines[0], lines
    template.write_text(template_text)

    # A partner file in a subfolder is never deployed: the hook says so instead of passing it.
    (sample / "partners" / "sub").mkdir()
    shutil.copy(sample / "partners" / "example-emp.yaml", sample / "partners" / "sub" / "x.yaml")
    bad = pre_commit_run(sample, hooks, "partners/sub/x.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(r"^partners/sub/x\.yaml:1:1: error\[partner-file-in-subfolder\]", bad.stdout, re.MULTILINE), \
        bad.stdout
    (sample / "partners" / "sub" / "x.yaml").unlink()

    assert git(sample, "status", "--porcelain") == ""  # everything restored: the same files pass
    good = pre_commit_run(sample, hooks, "hbsdeploy.yaml", "templates/_payload.j2", "schemas/partner.schema.json")
    assert good.returncode == 0, good.stdout + good.stderr
