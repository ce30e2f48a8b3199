"""Path containment: whether a path a user wrote stays inside a folder (the repository), links followed."""

from __future__ import annotations

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
    except (ValueError, OSError):
        return None
    return candidate if within(resolved_root, candidate) else None


def leaves(root: Path, value: str | Path) -> bool:
    """Whether `value` relative to `root` resolves outside it; False for a path that cannot be resolved at all (the
    caller reports that as unusable, not as an escape)."""
    resolved_root = root.resolve()
    try:
        candidate = (resolved_root / value).resolve()
    except (ValueError, OSError):
        return False
    return not within(resolved_root, candidate)
