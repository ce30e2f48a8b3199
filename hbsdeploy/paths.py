"""Path containment: whether a path a user wrote stays inside a folder (the repository), links followed."""

from __future__ import annotations

import errno
import functools
import os
from pathlib import Path


def within(root: Path, path: Path) -> bool:
    """Whether the resolved `path` is the resolved `root` or below it."""
    return path == root or root in path.parents


def resolve_within(root: Path, value: str | Path) -> Path | None:
    """`value` relative to `root`, resolved; None when it leaves `root` (absolute elsewhere, `..` out, a symbolic
    link out) or cannot be resolved (a NUL character, a path too long, a link loop: nothing to read there)."""
    resolved_root = root.resolve()
    try:
        candidate = (resolved_root / value).resolve()
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symbolic link loop (Python 3.11)
        return None
    return candidate if within(resolved_root, candidate) else None


def leaves(root: Path, value: str | Path) -> bool:
    """Whether `value` relative to `root` resolves outside it; False for a path that cannot be resolved at all (the
    caller reports that as unusable, not as an escape)."""
    resolved_root = root.resolve()
    try:
        candidate = (resolved_root / value).resolve()
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symbolic link loop (Python 3.11)
        return False
    return not within(resolved_root, candidate)


def unresolvable(root: Path, value: str | Path) -> str | None:
    """Why `value` relative to `root` cannot be resolved at all (a symbolic link loop, a NUL, a path too long), or
    None when it can."""
    try:
        (root.resolve() / value).resolve()
    except RuntimeError:  # Python 3.11 reports a link loop so; later versions raise OSError(ELOOP)
        return "is a symbolic link loop"
    except ValueError:
        return "holds a NUL character"
    except OSError as exc:
        return "is a symbolic link loop" if exc.errno == errno.ELOOP else f"cannot be resolved ({exc.strerror})"
    return None


def real_file_path(path: str | Path) -> str:
    """The absolute path with its folders resolved (one cached realpath per folder), not the file itself: a link named
    like a partner file stands for that partner file. OSError or ValueError when the folder cannot be resolved.
    Strings, not Paths: this runs for every file of a run, and pathlib's resolve costs tens of microseconds a call."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(real_folder(folder), name)


def real_folder(folder: str) -> str:
    """The folder resolved; cached by its absolute path (a relative one means another folder after a change of
    directory), since a run names thousands of files in a few folders."""
    return _realpath(os.path.abspath(folder))


@functools.lru_cache(maxsize=64)
def _realpath(folder: str) -> str:
    return os.path.realpath(folder)
