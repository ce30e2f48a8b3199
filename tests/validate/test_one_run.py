"""Issue 15: every problem of every file in one run. The portal rules check what is well-formed even where the schema
refused other parts of the file, and no mistake is reported twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from hbsdeploy.load.config import load_config
from tests.helpers import working_directory
from tests.validate.helpers import DATA, validation_lines

# The issue's hand-written file: `online_request: yes`, a misspelt key, a Service URL with a blank, an http://
# Reservation URL. Before: the first two only; fixing them revealed the rest.
HANDWRITTEN = """\
name: Handwritten GmbH
role: cpo
operator_id: "DE*H01"
environments:
  sandbox:
  qa:
service_types:
  authorization:
    online_request: yes
    broadcast_requst: false
    service_url: https://oicp.hand written.example.com
    client_certification: true
  reservation:
    online_request: true
    service_url: http://oicp.handwritten.example.com/reservation
    client_certification: true
"""

# What the user writes after reading the first run's schema errors.
FIXED_SCHEMA_ERRORS = HANDWRITTEN.replace("online_request: yes", "online_request: true").replace(
    "broadcast_requst", "broadcast_request")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "partners").mkdir(parents=True)
    (root / "hbsdeploy.yaml").write_text((DATA / "hbsdeploy.yaml").read_text().replace("partners: valid",
                                                                                       "partners: partners"))
    return root


def run(repo: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (repo / "partners" / name).write_text(text)
    with working_directory(repo):
        return validation_lines(load_config(repo / "hbsdeploy.yaml"), None)


def rules(lines: list[str]) -> list[tuple[str, str]]:
    """(file:line, rule) of each problem."""
    return [(line.split(":")[0] + ":" + line.split(":")[1], line.split("[")[1].split("]")[0]) for line in lines]


def test_the_issue_file_reports_all_four_problems_in_one_run(repo: Path) -> None:
    lines = run(repo, {"handwritten.yaml": HANDWRITTEN})
    assert rules(lines) == [
        ("partners/handwritten.yaml:9", "yaml11-boolean"),
        ("partners/handwritten.yaml:10", "unknown-key"),
        ("partners/handwritten.yaml:11", "service-url-whitespace"),
        ("partners/handwritten.yaml:15", "service-url-https"),
    ], lines
    assert "did you mean broadcast_request?" in lines[1]
    assert "must be an absolute https:// URL" in lines[3]


def test_fixing_the_schema_errors_reveals_nothing_new(repo: Path) -> None:
    first = run(repo, {"handwritten.yaml": HANDWRITTEN})
    second = run(repo, {"handwritten.yaml": FIXED_SCHEMA_ERRORS})
    assert second == [line for line in first if "[service-url-" in line]


def test_two_broken_files_are_reported_fully_in_one_run(repo: Path) -> None:
    emp = """\
name: Broken Mobility
role: emp
provider_id: "DE-BR"
environments:
  sandbox:
  prod:
    service_types:
      authorization:
        service_url: https://oicp.broken-mobility.example.com?x=1
service_types:
  authorization:
    online_request: true
    broadcast_request: true
    service_url: https://oicp.broken-mobility.example.com
    client_certification: 1
"""
    lines = run(repo, {"handwritten.yaml": HANDWRITTEN, "broken-emp.yaml": emp})
    assert rules(lines) == [
        ("partners/broken-emp.yaml:3", "provider-id-format"),
        ("partners/broken-emp.yaml:9", "service-url-query"),
        ("partners/broken-emp.yaml:15", "wrong-type"),
        ("partners/handwritten.yaml:9", "yaml11-boolean"),
        ("partners/handwritten.yaml:10", "unknown-key"),
        ("partners/handwritten.yaml:11", "service-url-whitespace"),
        ("partners/handwritten.yaml:15", "service-url-https"),
    ], lines


@pytest.mark.parametrize(("broken", "not_also"), [
    # a misspelt Service URL is not also "Online Request needs a Service URL"
    ("    online_request: true\n    servce_url: https://oicp.example.com\n    client_certification: true\n",
     "online-request-needs-url"),
    # an unusable certificate choice is not also "certificate_file is only used with certificate: user"
    ("    online_request: true\n    service_url: https://oicp.example.com\n    client_certification: true\n"
     "    certificate: usr\n    certificate_file: certs/oicp.pem\n", "certificate-file-unexpected"),
    # a mistyped Online Request is not also "a Service URL can only be entered with Online Request on"
    ("    online_request: 1\n    service_url: https://oicp.example.com\n    client_certification: true\n",
     "url-needs-online-request"),
])
def test_a_refused_field_is_not_reported_again_by_a_rule_that_reads_it(repo: Path, broken: str,
                                                                        not_also: str) -> None:
    text = f'name: X\nrole: cpo\noperator_id: "DE*X01"\nenvironments:\n  sandbox:\nservice_types:\n  authorization:\n' \
           f"{broken}"
    lines = run(repo, {"x.yaml": text})
    assert len(lines) == 1 and not_also not in lines[0], lines


def test_a_misspelt_service_type_is_not_also_a_missing_one(repo: Path) -> None:
    text = 'name: X\nrole: cpo\noperator_id: "DE*X01"\nenvironments:\n  sandbox:\nservice_types:\n  autorization:\n' \
           "    online_request: false\n"
    assert rules(run(repo, {"x.yaml": text})) == [("partners/x.yaml:7", "unknown-key")]


def test_an_unknown_role_still_gets_its_service_urls_checked(repo: Path) -> None:
    text = 'name: X\nrole: operator\noperator_id: "DE*X01"\nenvironments:\n  sandbox:\nservice_types:\n' \
           "  authorization:\n    online_request: true\n    service_url: http://oicp.example.com\n" \
           "    client_certification: true\n"
    assert rules(run(repo, {"x.yaml": text})) == [("partners/x.yaml:2", "invalid-value"),
                                                   ("partners/x.yaml:9", "service-url-https")]


def test_a_refused_file_still_counts_for_duplicate_ids(repo: Path) -> None:
    good = 'name: A\nrole: cpo\noperator_id: "DE*D01"\nenvironments:\n  sandbox:\nservice_types:\n' \
           "  authorization:\n    online_request: false\n"
    bad = good.replace("name: A", "name: B").replace("online_request: false", "online_request: no")
    found = rules(run(repo, {"a.yaml": good, "b.yaml": bad}))
    assert ("partners/b.yaml:3", "duplicate-partner-id") in found and ("partners/b.yaml:8", "yaml11-boolean") in found


def test_where_no_rule_can_run_the_schema_reports_the_url_too(repo: Path) -> None:
    """Without environments the rules cannot run: the pattern's error on the Service URL is then reported."""
    text = 'name: X\nrole: cpo\noperator_id: "DE*X01"\nenvironments: {}\nservice_types:\n  authorization:\n' \
           "    online_request: true\n    service_url: http://oicp.example.com\n"
    assert rules(run(repo, {"x.yaml": text})) == [("partners/x.yaml:4", "too-few-entries"),
                                                   ("partners/x.yaml:8", "invalid-format")]
