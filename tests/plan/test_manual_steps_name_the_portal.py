"""Issue 13, finding 8: manual steps name the environment's portal address and description, and a User certificate
by file, subject and expiry."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hbsdeploy.cli.main import cli

MANUAL_QA = """  qa:
    portal: manual
    url: https://portal-qa.hubject.com
    description: Hubject QA, operated by the roaming team
"""


def _qa_manual(repo: Path, settings: str) -> None:
    config = repo / "hbsdeploy.yaml"
    text = config.read_text()
    start = text.index("  qa:\n")
    end = text.index("  prod:\n")
    config.write_text(text[:start] + settings + "\n" + text[end:])


def test_steps_open_the_environments_portal_and_show_its_description(repo_copy: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_copy)
    _qa_manual(repo_copy, MANUAL_QA)
    result = CliRunner().invoke(cli, ["plan", "--env", "qa", "--format", "instructions"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Steps for qa (Hubject QA, operated by the roaming team) in the HBS portal at "
                               "https://portal-qa.hubject.com (")
    assert ("1. Open https://portal-qa.hubject.com and log in as a user with the Partner Account "
            "Administrator role.") in lines
    certificate = next(line for line in lines if "User certificate" in line)
    assert "certs/example-energy-oicp.pem (subject " in certificate and "CN=oicp.example-energy.com" in certificate
    assert ", expires 2046-10-27, SHA-256 " in certificate
    # the subject as RFC 4514 writes it (a comma in a value escaped once), as Certificate Management shows it
    assert "O=Example Energy (hbsdeploy example\\, not a real certificate)" in certificate
    assert "\\\\" not in certificate


def test_a_manual_portal_without_url_names_both_hubject_portals(repo_copy: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_copy)
    _qa_manual(repo_copy, "  qa:\n    portal: manual\n")
    result = CliRunner().invoke(cli, ["plan", "--env", "qa", "--format", "instructions"])
    assert result.exit_code == 0, result.output
    assert ("https://portal-qa.hubject.com for QA or https://portal.hubject.com for PROD; set `url:` of the "
            "environment in hbsdeploy.yaml") in result.stdout


def test_url_is_refused_on_an_api_portal(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_copy)
    _qa_manual(repo_copy, "  qa:\n    portal: local\n    url: https://portal-qa.hubject.com\n")
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 1
    assert "url is only used with portal: web or manual; remove it" in result.stdout
