"""What editors show from the schemas: `default` and `examples` that are true, and a `service_url` pattern that
agrees with the portal rules (which stay the authority: the pattern only ever refuses what they refuse)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from hbsdeploy.check.portalrules import check_service_url
from hbsdeploy.load.config import load_config
from hbsdeploy.load.ecmaregex import ecma_pattern
from hbsdeploy.load.resources import load_schema
from hbsdeploy.load.settings import DEFAULT_SETTINGS

SCHEMAS = ("partner", "config")


def _leaves(node: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property schema of a scalar value (a type or an enum, not a mapping), with where it is."""
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if ("enum" in node or kind is not None) and "object" not in (kind if isinstance(kind, list) else [kind]):
        yield path, node
    for keyword in ("properties", "$defs"):
        for name, sub in (node.get(keyword) or {}).items():
            yield from _leaves(sub, f"{path}.{name}")
    for keyword in ("additionalProperties", "items"):
        if isinstance(node.get(keyword), dict):
            yield from _leaves(node[keyword], f"{path}.*")


def _validator(root: dict[str, Any], sub: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({**sub, "$defs": root.get("$defs", {})})


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_value_has_examples_and_every_default_and_example_is_valid(name: str) -> None:
    root = load_schema(name)
    assert root["examples"], "the whole-file example"
    for example in root["examples"]:
        assert list(Draft202012Validator(root).iter_errors(example)) == [], example
    leaves = list(_leaves(root))
    assert len(leaves) >= 10
    for path, sub in leaves:
        if ".ui." in path:
            continue  # the UI map's overrides: names of the shipped map, documented in docs/web-portal.md
        assert sub.get("examples"), f"{name}: {path} has no examples"
        validator = _validator(root, sub)
        for value in [*sub["examples"], *([sub["default"]] if "default" in sub else [])]:
            assert list(validator.iter_errors(value)) == [], f"{name}: {path}: {value!r}"


def test_service_type_defaults_are_the_portals() -> None:
    fields = load_schema("partner")["$defs"]["service_type"]["properties"]
    for field, default in DEFAULT_SETTINGS.items():
        if field in fields:  # certificate_sha256 is computed from certificate_file, never written
            assert fields[field]["default"] == default, field


def test_config_defaults_are_what_hbsdeploy_uses(tmp_path: Path) -> None:
    (tmp_path / "hbsdeploy.yaml").write_text("environments:\n  sandbox:\n    portal: local\n"
                                             "  qa:\n    portal: https://gateway.example.com/qa\n")
    config = load_config(tmp_path / "hbsdeploy.yaml")
    schema = load_schema("config")["properties"]
    environment = schema["environments"]["additionalProperties"]["properties"]
    root = tmp_path.resolve()
    assert config.partners_dir == root / schema["partners"]["default"]
    assert config.templates_dir == root / schema["templates"]["default"]
    assert config.state_dir == root / schema["state_dir"]["default"]
    assert config.default_environment == schema["default_environment"]["default"]
    assert config.max_disable_fraction == schema["apply"]["properties"]["max_disable_fraction"]["default"]
    assert config.parallelism == schema["apply"]["properties"]["parallelism"]["default"]
    assert config.disable_check_min_scope == schema["apply"]["properties"]["disable_check_min_scope"]["default"]
    qa = config.environment("qa")
    assert qa.protected is environment["protected"]["default"]
    assert qa.verify_tls is environment["verify_tls"]["default"]
    assert qa.max_retries == environment["max_retries"]["default"]
    assert qa.web_parallelism == environment["parallelism"]["default"]
    timeouts = environment["timeouts"]["properties"]
    assert (qa.connect_timeout, qa.read_timeout, qa.total_timeout, qa.page_timeout) == tuple(
        timeouts[key]["default"] for key in ("connect", "read", "total", "page"))


def _url_pattern() -> Any:
    url = load_schema("partner")["$defs"]["service_type"]["properties"]["service_url"]
    assert url["x-reported-by-rules"] == ["pattern"]
    return ecma_pattern(url["pattern"])


def _rules_accept(url: str) -> bool:
    return not any(v.severity == "error" for v in check_service_url(url, allow_private_hosts=True))


@pytest.mark.parametrize("url", ["http://oicp.example.com", "https://oicp.example .com", "https://oicp.example.com/a b",
                                 " https://oicp.example.com", "https://oicp.example.com\t", "ftp://oicp.example.com",
                                 "https:/oicp.example.com", "oicp.example.com", "https://\u00a0oicp.example.com"])
def test_the_pattern_refuses_http_and_blanks_as_the_rules_do(url: str) -> None:
    assert not _url_pattern().search(url)
    assert not _rules_accept(url)


@pytest.mark.parametrize("url", ["https://oicp.example.com", "HTTPS://OICP.example.com:8443/base/",
                                 "https://[2001:db8::1]/oicp", "https://xn--bcher-kva.example/oicp",
                                 "https://oicp.example.com/path%20encoded"])
def test_the_pattern_accepts_what_the_rules_accept(url: str) -> None:
    assert _rules_accept(url)
    assert _url_pattern().search(url)


_URL_TEXT = st.text(alphabet=st.sampled_from("abcxyz019.-_:/?#@[]% \t\u00a0\u200bHTPSs"), max_size=30)


@settings(max_examples=400, deadline=None)
@given(scheme=st.sampled_from(["https://", "HTTPS://", "http://", "https:/", "", "https://a"]), rest=_URL_TEXT)
def test_the_pattern_never_refuses_a_url_the_rules_accept(scheme: str, rest: str) -> None:
    url = scheme + rest
    if _rules_accept(url):
        assert _url_pattern().search(url), url
