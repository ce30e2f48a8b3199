"""Issue 15: validate sees what a change to hbsdeploy.yaml, a schema or a template breaks (every partner, every
template rendered), reports template problems at their `file:line` relative to where it runs, and has one definition
of which files are partner files (a YAML file in a subfolder of partners/ is an error, never silently undeployed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.ecosystem.helpers import RunHbs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of this repository's example: config, partners, certificates, templates, schemas."""
    root = tmp_path / "sample"
    root.mkdir()
    shutil.copy(REPO / "hbsdeploy.yaml", root / "hbsdeploy.yaml")
    for folder in ("partners", "certs", "templates", "schemas"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def _lines(out: str) -> list[str]:
    return out.splitlines()[:-1]  # without the summary


def test_a_config_change_checks_every_partner(hbs: RunHbs, sample: Path) -> None:
    config = sample / "hbsdeploy.yaml"
    text = config.read_text()
    config.write_text(text[:text.index("  qa:\n")] + text[text.index("  prod:\n"):])
    code, out, _ = hbs("validate", "hbsdeploy.yaml", cwd=sample)
    assert code == 1
    assert [line.split(":")[0] for line in _lines(out)] == [
        "partners/example-cpo-user-certificate.yaml", "partners/example-cpo.yaml", "partners/example-emp.yaml"]
    assert all("error[unknown-environment]" in line for line in _lines(out))
    # a partner file alone is still checked alone
    code, out, _ = hbs("validate", "partners/example-emp.yaml", cwd=sample)
    assert code == 1 and [line.split(":")[0] for line in _lines(out)] == ["partners/example-emp.yaml"]


def test_a_broken_payload_macro_fails_validate_at_its_line(hbs: RunHbs, sample: Path) -> None:
    payload = sample / "templates" / "_payload.j2"
    lines = payload.read_text().splitlines(keepends=True)
    broken = next(i for i, line in enumerate(lines) if "| tojson }}" in line)
    lines[broken] = lines[broken].replace("tojson }}", "tojson }")
    payload.write_text("".join(lines))
    for args in ((), ("templates/_payload.j2",)):
        code, out, _ = hbs("validate", *args, cwd=sample)
        assert code == 1
        assert _lines(out) == [f"templates/_payload.j2:{broken + 1}:1: error[template-syntax]: template syntax error: "
                               "unexpected '}'"], out
    # plan names the same place, relative too (it was an absolute path)
    code, _, err = hbs("plan", cwd=sample)
    assert code == 1
    assert err.startswith(f"error: templates/_payload.j2:{broken + 1}: template syntax error")
    assert str(sample) not in err


def test_a_template_that_cannot_render_is_one_problem_naming_a_partner(hbs: RunHbs, sample: Path) -> None:
    template = sample / "templates" / "authorization.json.j2"
    template.write_text(template.read_text() + "{{ partner.no_such_field }}\n")
    code, out, _ = hbs("validate", "templates/authorization.json.j2", cwd=sample)
    assert code == 1
    (line,) = _lines(out)
    assert line.startswith("templates/authorization.json.j2:5:1: error[template-error]: UndefinedError: ")
    # every partner breaks it in every environment: one problem, naming the first
    assert line.endswith("'dict object' has no attribute 'no_such_field' (partner "
                         "partners/example-cpo-user-certificate.yaml, environment sandbox), and 8 more renderings")


def test_a_template_whose_payload_breaks_the_payload_schema(hbs: RunHbs, sample: Path) -> None:
    (sample / "templates" / "reservation.json.j2").write_text('{"online_request": "yes"}\n')
    code, out, _ = hbs("validate", cwd=sample)
    assert code == 1
    (line,) = _lines(out)
    assert line.startswith("templates/reservation.json.j2:1:1: error[template-invalid-payload]: payload breaks "
                           "schemas/portal-payload.schema.json")


def test_a_missing_template_folder_is_a_problem_of_the_config(hbs: RunHbs, sample: Path) -> None:
    shutil.rmtree(sample / "templates")
    code, out, _ = hbs("validate", cwd=sample)
    assert code == 1
    assert _lines(out) == ["hbsdeploy.yaml:5:12: error[template-folder-missing]: template folder templates does not "
                           "exist, so nothing can be planned; fix `templates:` or copy hbsdeploy's templates there "
                           "(`hbsdeploy init` writes them)"]


def test_a_missing_partner_folder_is_a_problem_of_the_config(hbs: RunHbs, sample: Path) -> None:
    """A typo in `partners:` (or the folder not committed): validate checked nothing and plan changed nothing, both
    with exit 0 and without a word (issue 13 review)."""
    config = sample / "hbsdeploy.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("partners: partners", "partners: partner"), encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if row.startswith("partners:"))
    expected = (f"hbsdeploy.yaml:{line}:11: error[partner-folder-missing]: partner folder partner does not exist, so "
                "nothing is checked or planned; fix `partners:` or create it with the partner files (`hbsdeploy init` "
                "writes an example)")
    for args in ((), ("hbsdeploy.yaml",)):
        code, out, _ = hbs("validate", *args, cwd=sample)
        assert code == 1 and _lines(out) == [expected], (args, out)
    code, _, err = hbs("plan", cwd=sample)
    assert code == 1 and expected in err


def test_a_partner_file_in_a_subfolder_is_an_error_not_silence(hbs: RunHbs, sample: Path) -> None:
    (sample / "partners" / "sub").mkdir()
    (sample / "partners" / "sub" / "x.yaml").write_text((sample / "partners" / "example-emp.yaml").read_text())
    expected = ("partners/sub/x.yaml:1:1: error[partner-file-in-subfolder]: hbsdeploy reads partner files only "
                "directly in partners/, not in its subfolders, so this partner would never be deployed; move the "
                "file to partners/ (or out of partners/ if it is no partner)")
    for args in ((), ("partners/sub/x.yaml",), ("hbsdeploy.yaml",)):
        code, out, _ = hbs("validate", *args, cwd=sample)
        assert code == 1 and _lines(out) == [expected], (args, out)
    # plan refuses the repository as validate does
    code, _, err = hbs("plan", cwd=sample)
    assert code == 1 and "partners/sub/x.yaml:1:1: error[partner-file-in-subfolder]" in err


def test_the_example_repository_is_valid_with_its_templates(hbs: RunHbs) -> None:
    code, out, _ = hbs("validate", cwd=REPO)
    assert code == 0 and out == "checked 4 files: 0 errors, 0 warnings\n"
