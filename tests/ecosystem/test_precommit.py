"""The hbsdeploy-validate hook, run by the real pre-commit (`try-repo`) on a sample repository.

pre-commit installs a hook from a git repository's committed tree (try-repo adds tracked, uncommitted changes, but
not untracked files), so the test commits a copy of this working tree's package files into a temporary repository
and points try-repo at that. pre-commit then builds a virtualenv and pip-installs hbsdeploy from it, through pip's
configured index: seconds with a warm wheel cache, well under a minute otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "hbsdeploy", "schemas", "templates")
GIT = ("git", "-c", "user.name=hbsdeploy tests", "-c", "user.email=tests@hbsdeploy.invalid",
       "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main")


def git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def commit_all(folder: Path) -> None:
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "test fixture")


def hook_repository(target: Path) -> Path:
    """A git repository holding this working tree's hbsdeploy package and hook file, committed."""
    target.mkdir()
    for name in PACKAGE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "_data", "*.pyc"))
        elif source.is_file():
            shutil.copy2(source, target / name)
    if not (target / "README.md").exists():  # pyproject.toml names it; a checkout without it cannot build
        (target / "README.md").write_text("# hbsdeploy\n")
    commit_all(target)
    return target


def sample_repository(target: Path) -> Path:
    target.mkdir()
    shutil.copy2(REPO / "hbsdeploy.yaml", target / "hbsdeploy.yaml")
    for folder in ("partners", "certs", "templates"):
        shutil.copytree(REPO / folder, target / folder)
    commit_all(target)
    return target


def try_repo(sample: Path, hooks: Path, home: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never", "NO_COLOR": "1",
           "GIT_CONFIG_GLOBAL": os.devnull}
    env.pop("HBSDEPLOY_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hooks), "hbsdeploy-validate", "--files", *files],
        cwd=sample, env=env, capture_output=True, text=True, timeout=120)


def test_the_hook_file_matches_partner_files_and_the_config() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "hbsdeploy-validate"
    assert (hook["entry"], hook["language"], hook["pass_filenames"]) == ("hbsdeploy validate", "python", True)
    files = re.compile(hook["files"])
    for path in ("partners/a.yaml", "partners/b.yml", "partners/sub/c.yaml", "hbsdeploy.yaml"):
        assert files.search(path), path
    for path in ("templates/a.yaml", "other/hbsdeploy.yaml", "partners/a.json", "hbsdeploy.yaml.bak"):
        assert not files.search(path), path


@pytest.mark.slow
def test_pre_commit_runs_the_hook_and_fails_on_a_blank_in_a_service_url(tmp_path: Path) -> None:
    hooks = hook_repository(tmp_path / "hooks")
    sample = sample_repository(tmp_path / "sample")
    home = tmp_path / "pre-commit-home"

    good = try_repo(sample, hooks, home, "partners/example-cpo.yaml", "hbsdeploy.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"^hbsdeploy validate\.+Passed$", good.stdout, re.MULTILINE), good.stdout

    partner = sample / "partners" / "example-cpo.yaml"
    lines = partner.read_text().splitlines(keepends=True)
    (index,) = [i for i, line in enumerate(lines) if "service_url: https://oicp.example-charging.com\n" in line]
    lines[index] = lines[index].replace("example-charging.com", "example charging.com")
    partner.write_text("".join(lines))

    bad = try_repo(sample, hooks, home, "partners/example-cpo.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(r"^hbsdeploy validate\.+Failed$", bad.stdout, re.MULTILINE), bad.stdout
    assert re.search(rf"^partners/example-cpo\.yaml:{index + 1}:\d+: error\[service-url-whitespace\]: "
                     r"Service URL contains U\+0020 \(SPACE\)", bad.stdout, re.MULTILINE), bad.stdout
