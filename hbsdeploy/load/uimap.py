"""The UI map: every page address, link, label, button, option and message the web driver uses, as data.

The defaults ship in hbsdeploy/portal/web/uimap.yaml, beside the driver (with the public source of each);
hbsdeploy.yaml overrides names key by key under `environments.<env>.ui.<group>.<key>`. Loading it is the load
layer's job (config checks the override keys), so neither this module nor config imports the driver or Playwright.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

UIMAP_FILE = Path(__file__).resolve().parents[1] / "portal" / "web" / "uimap.yaml"
GROUPS = ("pages", "links", "headings", "labels", "buttons", "options", "messages")


@dataclass(frozen=True)
class UiEntry:
    """One element: found on `page` by its ARIA `role` and accessible `name`."""

    group: str
    key: str
    role: str
    name: str
    page: str
    source: str

    @property
    def dotted(self) -> str:
        """How hbsdeploy.yaml names it under `ui:`, e.g. `labels.service_url`."""
        return f"{self.group}.{self.key}"

    def describe(self) -> str:
        """How messages name it: `the textbox "Service URL" (ui.labels.service_url)`."""
        return f'the {self.role} "{self.name}" (ui.{self.dotted})'


@dataclass(frozen=True)
class UiMap:
    """The entries by group and key; `overridden` lists the dotted keys hbsdeploy.yaml changed."""

    entries: Mapping[str, Mapping[str, UiEntry]]
    overridden: frozenset[str] = frozenset()

    def entry(self, group: str, key: str) -> UiEntry:
        """One entry; a KeyError names a key the shipped map lacks (a programming error, not a user one)."""
        return self.entries[group][key]

    def name(self, group: str, key: str) -> str:
        """The accessible name of one entry."""
        return self.entries[group][key].name

    def __iter__(self) -> Iterator[UiEntry]:
        for group in GROUPS:
            yield from self.entries.get(group, {}).values()

    def on_page(self, page: str) -> list[UiEntry]:
        """The entries found on one page (for doctor's one-at-a-time check)."""
        return [entry for entry in self if entry.page == page]

    def with_overrides(self, overrides: Mapping[str, Mapping[str, str]]) -> UiMap:
        """The map with some names replaced; unknown keys raise KeyError (config validation reports them first)."""
        if not overrides:
            return self
        entries = {group: dict(by_key) for group, by_key in self.entries.items()}
        changed = set(self.overridden)
        for group, by_key in overrides.items():
            for key, name in by_key.items():
                entries[group][key] = replace(entries[group][key], name=name, source="hbsdeploy.yaml")
                changed.add(f"{group}.{key}")
        return UiMap(entries, frozenset(changed))


def _parse(data: Any) -> UiMap:
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError(f"{UIMAP_FILE.name}: not a version 1 UI map")
    entries: dict[str, dict[str, UiEntry]] = {}
    for group in GROUPS:
        entries[group] = {}
        for key, raw in (data.get(group) or {}).items():
            missing = [field for field in ("role", "name", "page", "source") if not isinstance(raw.get(field), str)]
            if missing:
                raise ValueError(f"{UIMAP_FILE.name}: {group}.{key} lacks {', '.join(missing)}")
            entries[group][key] = UiEntry(group, key, raw["role"], raw["name"], raw["page"], raw["source"])
    unknown = set(data) - {"version", *GROUPS}
    if unknown:
        raise ValueError(f"{UIMAP_FILE.name}: unknown groups {', '.join(sorted(unknown))}")
    return UiMap(entries)


@functools.cache
def default_uimap() -> UiMap:
    """The shipped UI map (uimap.yaml)."""
    return _parse(yaml.safe_load(UIMAP_FILE.read_text(encoding="utf-8")))


def unknown_override_keys(overrides: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Every key of a `ui:` override the map lacks: (its path under `ui`, a message naming the choices)."""
    shipped = default_uimap().entries
    found: list[tuple[tuple[str, ...], str]] = []
    for group, by_key in overrides.items():
        if group not in shipped:
            found.append(((group,), f"ui has no group {group!r}; choose one of: {', '.join(GROUPS)}"))
            continue
        if not isinstance(by_key, Mapping):
            continue  # the schema reports a wrong type
        for key in by_key:
            if key not in shipped[group]:
                found.append(((group, key), f"ui.{group} has no entry {key!r}; choose one of: "
                                            f"{', '.join(sorted(shipped[group]))}"))
    return found
