"""hbsdeploy.paths: the one containment check behind config paths, certificate files and partner files."""

from __future__ import annotations

from pathlib import Path

from hbsdeploy.paths import leaves, resolve_within, within


def test_paths_inside_the_root_resolve_and_others_do_not(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "certs").mkdir(parents=True)
    (tmp_path / "outside.pem").write_text("x")
    (root / "certs" / "link.pem").symlink_to(tmp_path / "outside.pem")
    (root / "certs" / "inner.pem").symlink_to(root / "certs")
    assert resolve_within(root, "certs/a.pem") == root.resolve() / "certs" / "a.pem"
    assert resolve_within(root, ".") == root.resolve()
    assert resolve_within(root, "certs/../certs/a.pem") == root.resolve() / "certs" / "a.pem"
    for escaping in ("../outside.pem", str(tmp_path / "outside.pem"), "certs/link.pem", "/etc/passwd"):
        assert resolve_within(root, escaping) is None, escaping
        assert leaves(root, escaping), escaping
    assert resolve_within(root, "certs/inner.pem") == root.resolve() / "certs"
    assert not leaves(root, "certs/a.pem")


def test_an_unresolvable_path_is_not_inside_and_not_an_escape(tmp_path: Path) -> None:
    assert resolve_within(tmp_path, "a\0b") is None
    assert leaves(tmp_path, "a\0b") is False


def test_within_compares_whole_path_parts(tmp_path: Path) -> None:
    assert within(tmp_path / "repo", tmp_path / "repo" / "x")
    assert within(tmp_path / "repo", tmp_path / "repo")
    assert not within(tmp_path / "repo", tmp_path / "repo-other" / "x")
