"""render_project, `render`'s job without click: which environments and partners, and the warnings handed on."""

from __future__ import annotations

from pathlib import Path

import pytest

from hbsdeploy.errors import HbsError, Problem
from hbsdeploy.load.config import load_config
from hbsdeploy.render.payloads import render_project


def test_one_environment_and_partner_and_the_warnings(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_copy)
    partner = repo_copy / "partners" / "example-cpo.yaml"
    partner.write_text(partner.read_text().replace("broadcast_request: false", "broadcast_request: true", 1))
    config = load_config(repo_copy / "hbsdeploy.yaml")
    warned: list[list[Problem]] = []
    rendered = render_project(config, "sandbox", ["DE*A36"], warn=warned.append)
    assert [(r.environment, r.partner_id, r.service_type) for r in rendered] == [
        ("sandbox", "DE*A36", "authorization"), ("sandbox", "DE*A36", "reservation")]
    assert [[p.rule for p in problems] for problems in warned] == [["cpo-broadcast"]]


def test_every_environment_when_none_is_named(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_copy)
    config = load_config(repo_copy / "hbsdeploy.yaml")
    rendered = render_project(config, warn=lambda problems: None)
    assert {r.environment for r in rendered} == set(config.environments)
    with pytest.raises(HbsError, match="no partner file has ID 'XX\\*NONE'"):
        render_project(config, "qa", ["XX*NONE"], warn=lambda problems: None)
