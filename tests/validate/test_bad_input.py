"""Bad inputs that cannot sit in the corpus as files: generated, too large, missing, a folder, unreadable, or with a
side effect to watch for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hbsdeploy.errors import InputError
from hbsdeploy.load import yamlload
from tests.helpers import working_directory
from tests.validate.helpers import DATA, REPO, corpus_config, validation_lines


def _lines(path: Path) -> list[str]:
    with working_directory(path.parent):
        return validation_lines(corpus_config(), [Path(path.name)])


class _RecordingFile:
    """A file object that records the sizes asked of read()."""

    def __init__(self, handle: Any, reads: list[int]) -> None:
        self.handle, self.reads = handle, reads

    def __enter__(self) -> _RecordingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        data: bytes = self.handle.read(size)
        return data


def test_50_mb_file_fails_on_size_without_reading_it_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.write(b"name: ")
        handle.truncate(50 * 1024 * 1024)  # a sparse 50 MB file: quick to make
    reads: list[int] = []
    real_fdopen = os.fdopen
    big_inode = big.stat().st_ino

    def recording_fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        return _RecordingFile(handle, reads) if os.fstat(fd).st_ino == big_inode else handle

    monkeypatch.setattr(os, "fdopen", recording_fdopen)
    assert _lines(big) == [
        "big.yaml:1:1: error[file-too-large]: is larger than 1024 KiB; a partner file is a few lines"]
    assert reads == []  # refused on its size (fstat) before a byte is read (hbsdeploy.files.read_bytes)


def test_missing_path() -> None:
    with working_directory(DATA):
        assert validation_lines(corpus_config(), [Path("invalid/no-such-file.yaml")]) == [
            "invalid/no-such-file.yaml:1:1: error[file-not-found]: no such file; check the path"]


def test_directory() -> None:
    with working_directory(DATA):
        assert validation_lines(corpus_config(), [Path("valid")]) == [
            "valid:1:1: error[not-a-file]: is a directory; name a YAML file or pass no paths to check every partner "
            "file"]


UNREADABLE = "secret.yaml:1:1: error[file-unreadable]: permission denied; make the file readable"

# Validates secret.yaml in the working directory through the library and prints the problem lines.
_VALIDATE_SCRIPT = """
import sys
from pathlib import Path
from hbsdeploy.load.config import load_config
from hbsdeploy.check.validate import validate
report = validate(load_config(Path(sys.argv[1])), [Path("secret.yaml")])
print("\\n".join(p.format() for p in report.problems))
"""


def _can_drop_file_permission_override() -> bool:
    if shutil.which("setpriv") is None:
        return False
    done = subprocess.run([*_NO_DAC_OVERRIDE, "true"], capture_output=True)
    return done.returncode == 0


_NO_DAC_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 000 for real. root reads any file, so as root the check runs in a process without the capabilities that
    let root ignore file permissions (setpriv); only where that is impossible is open() made to refuse."""
    secret = tmp_path / "secret.yaml"
    secret.write_text("name: x\n")
    secret.chmod(0)
    if os.geteuid() != 0:
        assert _lines(secret) == [UNREADABLE]
    elif _can_drop_file_permission_override():
        done = subprocess.run([*_NO_DAC_OVERRIDE, sys.executable, "-c", _VALIDATE_SCRIPT, str(DATA / "hbsdeploy.yaml")],
                              cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [UNREADABLE]
    else:
        def refuse(self: Path, *args: object, **kwargs: object) -> object:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "open", refuse)
        assert _lines(secret) == [UNREADABLE]


def test_python_tag_never_executes(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    for tag in ("!!python/object/apply:os.system", "!!python/object/new:os.system", "!!python/name:os.system"):
        path = tmp_path / "partner.yaml"
        path.write_text(f'name: {tag} ["touch {marker}"]\nrole: cpo\n')
        lines = _lines(path)
        assert len(lines) == 1 and "error[yaml-tag]" in lines[0], lines
    assert not marker.exists()


def test_alias_bomb_stops_at_the_node_limit() -> None:
    """A billion-laughs file stops after MAX_NODES values, long before it would expand (9^9 strings)."""
    text = (DATA / "invalid" / "yaml-alias-bomb.yaml").read_text()
    with pytest.raises(InputError) as caught:
        yamlload.parse_yaml(text, "bomb.yaml")
    assert [p.rule for p in caught.value.problems] == ["yaml-too-large"]


@pytest.mark.parametrize("text", ["[" * 500_000 + "]" * 500_000, "{a: " * 200_000 + "}" * 200_000,
                                  "- " * 300_000 + "x"])
def test_extreme_nesting_is_an_error_not_a_crash(text: str) -> None:
    """libyaml's composer recursed in C and crashed the interpreter (SIGSEGV) on these; the loader stops at depth."""
    with pytest.raises(InputError) as caught:
        yamlload.parse_yaml(text, "deep.yaml")
    assert [p.rule for p in caught.value.problems] == ["yaml-too-deep"]


def test_deep_nesting_inside_a_skipped_value_is_bounded_too() -> None:
    text = "a: 1\na: " + "[" * 100_000 + "]" * 100_000 + "\n"
    with pytest.raises(InputError) as caught:
        yamlload.parse_yaml(text, "deep.yaml")
    assert [p.rule for p in caught.value.problems] == ["yaml-too-deep"]


def test_alias_keeps_the_anchored_positions() -> None:
    document = yamlload.parse_yaml("a: &x {b: 1}\nc: *x\n", "t.yaml")
    assert document.data == {"a": {"b": 1}, "c": {"b": 1}}
    assert document.position(("c",)) == (2, 4)  # the alias itself
    assert document.position(("c", "b")) == (1, 11)  # where the value is written
    assert document.position(("c", "b"), key=True) == (1, 8)


def test_yaml_12_scalars() -> None:
    document = yamlload.parse_yaml("a: yes\nb: 0o7\nc: 1.5\nd: ~\ne: '1'\nf: 010\ng: .inf\nh: 1_000\ni: True\n", "t")
    assert document.data == {"a": "yes", "b": "0o7", "c": 1.5, "d": None, "e": "1", "f": 10, "g": ".inf",
                             "h": "1_000", "i": True}


def test_pure_python_parser_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where PyYAML lacks libyaml, the same loader runs on the pure-Python parser."""
    import yaml

    texts = [(DATA / "valid" / name).read_text() for name in ("cpo.yaml", "anchors-and-quoting.yaml")]
    with_c = [yamlload.parse_yaml(text, "t") for text in texts]
    monkeypatch.setattr(yamlload, "_Parser", yaml.BaseLoader)
    with_python = [yamlload.parse_yaml(text, "t") for text in texts]
    assert [(d.data, d.values, d.keys) for d in with_c] == [(d.data, d.values, d.keys) for d in with_python]
