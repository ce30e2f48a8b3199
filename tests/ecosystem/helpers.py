"""Shared by the ecosystem tests (a module name no other test folder uses)."""

from __future__ import annotations

from collections.abc import Callable

RunHbs = Callable[..., tuple[int, str, str]]
