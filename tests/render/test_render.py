"""Rendering partner settings through templates into portal payloads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hbsdeploy.cli.main import cli
from hbsdeploy.load.config import load_config
from hbsdeploy.load.partner import partner_from_document
from hbsdeploy.load.yamlload import parse_yaml
from hbsdeploy.render.payloads import Renderer

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]


def run(repo: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(repo / "hbsdeploy.yaml"), *args])
    return result.exit_code, result.stdout, result.stderr


def test_example_partners_render_to_the_golden_payloads(repo_copy: Path) -> None:
    code, out, err = run(repo_copy, "render")
    assert code == 0, err
    assert out == (DATA / "golden-payloads.json").read_text(encoding="utf-8")


def test_render_is_byte_for_byte_deterministic(repo_copy: Path) -> None:
    outputs = {run(repo_copy, "render")[1] for _ in range(3)}
    assert len(outputs) == 1


def test_render_out_writes_one_file_per_payload(repo_copy: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    code, _, err = run(repo_copy, "render", "--env", "qa", "--partner", "DE*A36", "--out", str(out_dir))
    assert code == 0, err
    files = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.json"))
    assert files == ["qa/DE%2AA36/authorization.json", "qa/DE%2AA36/reservation.json"]
    payload = json.loads((out_dir / "qa/DE%2AA36/authorization.json").read_text())
    assert payload["service_url"] == "https://oicp-qa.example-charging.com"


def test_environment_overrides_apply_field_by_field(repo_copy: Path) -> None:
    code, out, _ = run(repo_copy, "render", "--partner", "DE*A36")
    document = json.loads(out)
    assert document["qa"]["DE*A36"]["authorization"]["service_url"] == "https://oicp-qa.example-charging.com"
    assert document["prod"]["DE*A36"]["authorization"]["service_url"] == "https://oicp.example-charging.com"
    assert document["qa"]["DE*A36"]["authorization"]["client_certification"] is True


def test_custom_template_folder_changes_the_payload_without_code(repo_copy: Path) -> None:
    custom = repo_copy / "gateway-templates"
    shutil.copytree(repo_copy / "templates", custom)
    template = custom / "authorization.json.j2"
    template.write_text(template.read_text().replace(
        "{{ payload.service_type_payload(settings) }}",
        "{%- set gateway = dict(settings, service_url=settings.service_url ~ '/via-gateway') -%}\n"
        "{{ payload.service_type_payload(gateway) }}"))
    config = repo_copy / "hbsdeploy.yaml"
    config.write_text(config.read_text().replace("templates: templates", "templates: gateway-templates"))
    code, out, err = run(repo_copy, "render", "--env", "prod", "--partner", "DE*A36")
    assert code == 0, err
    payloads = json.loads(out)["prod"]["DE*A36"]
    assert payloads["authorization"]["service_url"] == "https://oicp.example-charging.com/via-gateway"
    assert payloads["reservation"]["service_url"] == "https://oicp.example-charging.com/reservation"


def _renderer_and_partner(repo: Path, service_url: str) -> tuple[Renderer, object]:
    config = load_config(repo / "hbsdeploy.yaml")
    text = (
        "name: Hostile\nrole: cpo\noperator_id: 'DE*H01'\nenvironments: {sandbox: }\n"
        "service_types:\n  authorization:\n    online_request: true\n"
        f"    service_url: {json.dumps(service_url)}\n"
    )
    partner = partner_from_document(parse_yaml(text, "hostile.yaml"))
    return Renderer(config), partner


@pytest.mark.parametrize("value", [
    'https://x.example.com/"},"online_request":false,"x":{"a":"',
    "https://x.example.com/{{ 7*7 }}",
    "https://x.example.com/{% for x in range(10**9) %}{% endfor %}",
    "https://x.example.com/\\\"\n\r\t\u2028",
    "https://x.example.com/</script><!--",
])
def test_hostile_values_are_rendered_inert(repo_copy: Path, value: str) -> None:
    renderer, partner = _renderer_and_partner(repo_copy, value)
    config = renderer.config
    env = config.environment("sandbox")
    service_type = partner.resolve("sandbox")["authorization"]  # type: ignore[attr-defined]
    rendered = renderer.render(partner, env, service_type)  # type: ignore[arg-type]
    assert rendered.payload["service_url"] == value
    assert rendered.payload["online_request"] is True
    assert set(rendered.payload) == {"online_request", "broadcast_request", "service_url", "client_certification",
                                     "certificate", "certificate_sha256"}


BROKEN_TEMPLATES = {
    "invalid-json": ("{{ settings.online_request }}, oops", "renders invalid JSON"),
    "undefined-variable": ('{\n"online_request": {{ settings.no_such_field | tojson }}\n}', "authorization.json.j2:2"),
    "schema-break": ('{"online_request": "yes"}', "payload breaks schemas/portal-payload.schema.json"),
    "syntax-error": ("{% if %}", "template syntax error"),
    "sandbox-escape": ("{{ settings.__class__.__mro__[1].__subclasses__() | tojson }}", "SecurityError"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_TEMPLATES))
def test_broken_template_is_a_one_line_error_naming_template_partner_and_environment(repo_copy: Path,
                                                                                     case: str) -> None:
    body, expected = BROKEN_TEMPLATES[case]
    (repo_copy / "templates" / "authorization.json.j2").write_text(body)
    code, out, err = run(repo_copy, "render", "--env", "qa")
    assert code == 1
    assert expected in err
    assert "authorization.json.j2" in err
    assert "Traceback" not in err and out == ""
    if case not in ("syntax-error",):
        assert "environment qa" in err and "partners/" in err


def test_missing_template_says_which_file_to_create(repo_copy: Path) -> None:
    (repo_copy / "templates" / "reservation.json.j2").unlink()
    code, _, err = run(repo_copy, "render")
    assert code == 1
    assert "no template for service type 'reservation'" in err and "reservation.json.j2" in err


def test_templates_load_only_from_the_configured_folder(repo_copy: Path) -> None:
    secret = repo_copy / "secret.txt"
    secret.write_text("do-not-read")
    (repo_copy / "templates" / "authorization.json.j2").write_text('{% include "../secret.txt" %}')
    code, out, err = run(repo_copy, "render")
    assert code == 1
    assert "do-not-read" not in out + err


def test_render_refuses_invalid_partners(repo_copy: Path) -> None:
    path = repo_copy / "partners" / "example-cpo.yaml"
    path.write_text(path.read_text().replace("online_request: true", "online_request: yes", 1))
    code, out, err = run(repo_copy, "render")
    assert code == 1
    assert "example-cpo.yaml:" in err and "write true" in err
    assert out == ""


def test_render_does_not_compile_a_template_twice(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import jinja2

    compiled: list[str] = []
    original = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: str, name: str | None = None, *args: object,
                 **kwargs: object) -> object:
        compiled.append(name or "?")
        return original(self, source, name, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    code, _, err = run(repo_copy, "render")
    assert code == 0, err
    assert sorted(compiled) == ["_payload.j2", "authorization.json.j2", "reservation.json.j2"]


def test_template_error_names_a_template_line_for_undefined(repo_copy: Path) -> None:
    (repo_copy / "templates" / "authorization.json.j2").write_text('{\n\n\n"x": {{ nope | tojson }}\n}')
    code, _, err = run(repo_copy, "render")
    assert code == 1
    assert "authorization.json.j2:4" in err
    assert "TemplateError" not in err or "UndefinedError" in err


def test_shipped_templates_match_the_repository_templates() -> None:
    from hbsdeploy.load.resources import default_templates_dir

    shipped = {p.name: p.read_text() for p in default_templates_dir().glob("*.j2")}
    repo = {p.name: p.read_text() for p in (REPO / "templates").glob("*.j2")}
    assert shipped == repo
