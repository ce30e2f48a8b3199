"""`hbsdeploy init`: a new repository that validates, renders and plans at once, and never overwrites a file."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hbsdeploy.load.resources import default_templates_dir, schemas_dir
from hbsdeploy.tools.scaffold import HOOK_FILES, HOOK_ID, scaffold_files
from tests.ecosystem.helpers import RunHbs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def new_repo(tmp_path: Path, hbs: RunHbs) -> Path:
    target = tmp_path / "new"
    code, out, err = hbs("init", str(target))
    assert code == 0, err
    assert f"created {target / 'hbsdeploy.yaml'}" in out
    return target


def test_init_writes_config_partner_templates_schemas_and_hooks(new_repo: Path) -> None:
    written = sorted(str(p.relative_to(new_repo)) for p in new_repo.rglob("*") if p.is_file())
    assert written == [f.path for f in scaffold_files()]
    assert {".gitignore", ".pre-commit-config.yaml", "hbsdeploy.yaml", "partners/example-cpo.yaml",
            "schemas/partner.schema.json", "schemas/config.schema.json",
            "templates/authorization.json.j2"} <= set(written)
    for template in default_templates_dir().glob("*.j2"):
        assert filecmp.cmp(template, new_repo / "templates" / template.name, shallow=False)
    for schema in schemas_dir().glob("*.schema.json"):
        assert filecmp.cmp(schema, new_repo / "schemas" / schema.name, shallow=False)
    ignored = (new_repo / ".gitignore").read_text().splitlines()
    assert ".hbsdeploy/" in ignored and "*.key" in ignored
    assert "web-session-*.json" in ignored  # a web portal's session, even with another state_dir


def test_the_new_repository_validates_renders_and_plans_on_the_sandbox(new_repo: Path, hbs: RunHbs) -> None:
    code, out, err = hbs("validate", cwd=new_repo)
    assert (code, out) == (0, "checked 2 files: 0 errors, 0 warnings\n"), err
    code, out, err = hbs("validate", "--strict", cwd=new_repo)
    assert code == 0, out + err
    code, out, err = hbs("render", cwd=new_repo)
    assert code == 0, err
    assert json.loads(out)["sandbox"]["DE*X01"]["authorization"]
    code, out, err = hbs("plan", "--detailed-exitcode", cwd=new_repo)
    assert code == 2, err  # the sandbox starts empty: enabling the example partner is pending
    assert "DE*X01" in out


def test_the_steps_of_a_new_repository_name_each_hubject_portal(new_repo: Path, hbs: RunHbs) -> None:
    """Issue 13, finding 8: without a `url:` the steps could not say which portal PROD is."""
    for environment, portal in (("qa", "https://portal-qa.hubject.com"), ("prod", "https://portal.hubject.com")):
        code, out, err = hbs("plan", "--env", environment, "--format", "instructions", cwd=new_repo)
        assert code == 0, err
        assert f"1. Open {portal} and log in" in out


def test_the_schema_lines_of_the_new_repository_point_at_its_schemas(new_repo: Path) -> None:
    for path, schema in (("hbsdeploy.yaml", "config"), ("partners/example-cpo.yaml", "partner")):
        first = (new_repo / path).read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=")
        target = (new_repo / path).parent / first.split("$schema=", 1)[1]
        assert target.resolve() == (new_repo / "schemas" / f"{schema}.schema.json").resolve()


def _validate_precommit_config(path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pre_commit", "validate-config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_pre_commit_config_runs_the_validate_hook_like_the_shipped_one(new_repo: Path) -> None:
    config_path = new_repo / ".pre-commit-config.yaml"
    _validate_precommit_config(config_path)
    (hook,) = yaml.safe_load(config_path.read_text())["repos"][0]["hooks"]
    (shipped,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == shipped["id"] == HOOK_ID
    assert hook["entry"] == shipped["entry"] == "hbsdeploy validate"
    assert hook["files"] == shipped["files"] == HOOK_FILES


def test_init_with_a_hook_repository_uses_the_shipped_hook(tmp_path: Path, hbs: RunHbs) -> None:
    code, _, err = hbs("-q", "init", str(tmp_path), "--hook-repo", "https://git.example.com/hbsdeploy",
                       "--hook-rev", "v1.2.3")
    assert code == 0, err
    config_path = tmp_path / ".pre-commit-config.yaml"
    _validate_precommit_config(config_path)
    repo = yaml.safe_load(config_path.read_text())["repos"][0]
    assert repo == {"repo": "https://git.example.com/hbsdeploy", "rev": "v1.2.3", "hooks": [{"id": HOOK_ID}]}


def test_init_in_an_existing_repository_adds_what_is_missing_and_overwrites_nothing(tmp_path: Path,
                                                                                    hbs: RunHbs) -> None:
    (tmp_path / "hbsdeploy.yaml").write_text("mine\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "authorization.json.j2").write_text("mine too\n")
    (tmp_path / ".gitignore").write_text("node_modules/\n*.key")  # no newline at the end
    precommit = "repos:\n  - repo: https://github.com/pre-commit/pre-commit-hooks\n    rev: v4.6.0\n" \
                "    hooks:\n      - id: trailing-whitespace\n"
    (tmp_path / ".pre-commit-config.yaml").write_text(precommit)
    code, out, err = hbs("init", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "hbsdeploy.yaml").read_text() == "mine\n"
    assert (tmp_path / "templates" / "authorization.json.j2").read_text() == "mine too\n"
    assert (tmp_path / ".pre-commit-config.yaml").read_text() == precommit
    assert f"skipped {tmp_path / 'hbsdeploy.yaml'}: exists" in out
    assert f"skipped {tmp_path / 'templates/authorization.json.j2'}: exists" in out
    assert f"skipped {tmp_path / '.pre-commit-config.yaml'}: exists without the {HOOK_ID} hook" in out
    assert "  - repo: local\n" in out and f"      - id: {HOOK_ID}\n" in out  # the entry to paste
    # The .gitignore keeps its lines and gains only the missing ones (appended, never rewritten).
    ignored = (tmp_path / ".gitignore").read_text()
    assert ignored.startswith("node_modules/\n*.key\n#")
    assert ignored.count("*.key") == 1 and ".hbsdeploy/\n" in ignored and "web-session-*.json\n" in ignored
    assert f"updated {tmp_path / '.gitignore'}: added .hbsdeploy/, web-session-*.json" in out
    for added in ("partners/example-cpo.yaml", "schemas/partner.schema.json", "templates/reservation.json.j2"):
        assert f"created {tmp_path / added}" in out and (tmp_path / added).is_file()


def test_init_leaves_the_example_partner_out_where_partner_files_exist(tmp_path: Path, hbs: RunHbs) -> None:
    (tmp_path / "partners").mkdir()
    (tmp_path / "partners" / "de-abc.yaml").write_text("name: mine\n")
    code, out, err = hbs("init", str(tmp_path))
    assert code == 0, err
    assert not (tmp_path / "partners" / "example-cpo.yaml").exists()
    assert "skipped" in out and "partners/ already holds partner files" in out


def test_init_twice_adds_nothing_and_says_so(new_repo: Path, hbs: RunHbs) -> None:
    before = {p: p.read_bytes() for p in new_repo.rglob("*") if p.is_file()}
    code, out, err = hbs("init", cwd=new_repo)
    assert code == 0, err
    assert out.count("skipped ") == len(scaffold_files())
    assert "nothing to add" in out
    assert {p: p.read_bytes() for p in new_repo.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("args", [["--hook-rev", "v0.1.0"], ["--hook-repo", "https://git.example.com/hbsdeploy"]])
def test_init_never_guesses_a_hook_revision(tmp_path: Path, hbs: RunHbs, args: list[str]) -> None:
    # Issue 12, scenario 7: `init --hook-rev v0.1.0` wrote a config naming a tag that does not exist.
    code, out, err = hbs("init", str(tmp_path), *args)
    assert code == 2
    assert "--hook-rev" in err and "--hook-repo" in err
    assert list(tmp_path.iterdir()) == []


def test_the_default_pre_commit_config_names_no_revision(new_repo: Path) -> None:
    config = yaml.safe_load((new_repo / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    assert all("rev" not in repo for repo in config["repos"])


def test_init_into_a_file_is_a_usage_error(tmp_path: Path, hbs: RunHbs) -> None:
    (tmp_path / "afile").write_text("")
    code, _, err = hbs("init", str(tmp_path / "afile"))
    assert code == 2
    assert "is a file" in err


def test_library_modules_neither_import_click_nor_print() -> None:
    library = [path for path in (REPO / "hbsdeploy").rglob("*.py") if "cli" not in path.relative_to(REPO).parts[1:-1]]
    assert len(library) > 20
    for path in library:
        source = path.read_text()
        assert "import click" not in source and "print(" not in source, path
