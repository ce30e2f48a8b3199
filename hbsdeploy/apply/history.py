"""`hbsdeploy audit`: the audit log read back as a history (who, when, what, result, evidence), filtered.

The log is JSON Lines (hbsdeploy/apply/audit.py writes it; schemas/audit.schema.json describes a line as
`#/$defs/entry` and the JSON output of `hbsdeploy audit --format json` as the whole document). Several logs can be
read at once (the artifacts of several CI runs): the same entry found twice is shown once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hbsdeploy.apply.audit import read_audit
from hbsdeploy.errors import HbsError, UsageError
from hbsdeploy.files import FileRefused
from hbsdeploy.load.partner import Identity, identities_named, written_identities
from hbsdeploy.text import escape, plural

AUDIT_FORMAT_VERSION = 1

# What a line must hold to be shown; anything else in the file (a torn or foreign line) is counted, not shown.
_REQUIRED = ("time", "user", "environment", "partner_id", "service_type", "kind", "result")


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to show: each non-empty tuple is a choice of values; times are inclusive bounds."""

    environments: tuple[str, ...] = ()
    partner_ids: tuple[str, ...] = ()
    service_types: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def matches(self, entry: Mapping[str, Any], partners: Collection[Identity] = ()) -> bool:
        """Whether `entry` passes every filter given; `partners`: the partners --partner names (`named_partners`)."""
        for values, key in ((self.environments, "environment"), (self.service_types, "service_type"),
                            (self.results, "result"), (self.users, "user")):
            if values and entry.get(key) not in values:
                return False
        if self.partner_ids and entry.get("partner_id") not in self.partner_ids:
            written = entry.get("partner_id")
            if not isinstance(written, str) or not set(written_identities(written)) & set(partners):
                return False
        when = entry_time(entry)
        if self.since is not None and (when is None or when < self.since):
            return False
        return not (self.until is not None and (when is None or when > self.until))

    def named_partners(self, entries: Iterable[Mapping[str, Any]]) -> set[Identity]:
        """The partners (role, canonical ID) that --partner names among those of `entries`, resolved as plan's
        --partner resolves IDs (`identities_named`): `DEA36` and `DE*A36` are one operator, `49*536` and `+49*536`
        one. An entry's partner is what its ID says (an entry written with another spelling, e.g. `DEA36`, may be
        either role), and an ID naming an operator and a provider shows both."""
        if not self.partner_ids:
            return set()
        known = {identity for entry in entries if isinstance(entry.get("partner_id"), str)
                 for identity in written_identities(entry["partner_id"])}
        return {identity for requested in self.partner_ids for identity in identities_named(requested, known)}


@dataclass(frozen=True)
class History:
    """The entries shown, oldest first, and how many lines of the logs were not audit entries."""

    entries: tuple[dict[str, Any], ...]
    skipped: int = 0


def parse_when(text: str, option: str, *, end: bool = False) -> dt.datetime:
    """A date (`2026-11-26`: its start, or with `end` its last moment) or an ISO 8601 time; UTC when no zone."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
        else:
            moment = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date or time; write 2026-11-26 or 2026-11-26T15:30:00Z"
                         ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def entry_time(entry: Mapping[str, Any]) -> dt.datetime | None:
    """When an entry was written, or None if its time cannot be read."""
    value = entry.get("time")
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def load_history(paths: Sequence[Path], selection: AuditFilter) -> History:
    """The entries of every log in `paths` that `selection` lets through, oldest first, each once."""
    seen: set[str] = set()
    entries: list[dict[str, Any]] = []
    skipped = 0
    for path in paths:
        if not path.is_file():
            raise HbsError(f"{path}: no audit log there; apply writes it to <state_dir>/audit.jsonl, CI keeps it "
                           "as the run's `hbsdeploy-audit` artifact (docs/review.md)")
        try:
            found = read_audit(path)
        except (FileRefused, OSError) as exc:
            raise HbsError(f"{path}: cannot read the audit log ({exc}); check the file") from None
        for entry in found:
            if not isinstance(entry, dict) or any(key not in entry for key in _REQUIRED):
                skipped += 1
                continue
            key = json.dumps(entry, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            entries.append(entry)
    partners = selection.named_partners(entries)
    entries = [entry for entry in entries if selection.matches(entry, partners)]
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    entries.sort(key=lambda e: (entry_time(e) or epoch, e["environment"], e["partner_id"], e["service_type"]))
    return History(tuple(entries), skipped)


def history_json(history: History) -> str:
    """The history as one JSON document (schemas/audit.schema.json), for scripts."""
    document = {"format_version": AUDIT_FORMAT_VERSION, "entries": list(history.entries),
                "skipped_lines": history.skipped}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def history_text(history: History) -> list[str]:
    """Per entry: when, where, what and its result, by whom; then what changed, the message and the evidence."""
    lines: list[str] = []
    for entry in history.entries:
        when = entry_time(entry)
        shown_time = when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ") if when else "?"
        lines.append(f"{shown_time}  {_s(entry['environment'])}  {_s(entry['partner_id'])} / "
                     f"{_s(entry['service_type'])}  {_s(entry['kind'])}: {_s(entry['result'])}  by "
                     f"{_s(entry['user'])}")
        changed = changed_fields(entry.get("before"), entry.get("after"))
        if changed:
            lines.append(f"    {changed}")
        if entry.get("message"):
            lines.append(f"    {_s(entry['message'])}")
        if entry.get("plan_checksum"):
            lines.append(f"    plan {_s(entry['plan_checksum'])}")
        lines.extend(f"    evidence: {_s(item)}" for item in _list(entry.get("evidence")))
    summary = plural(len(history.entries), "entry", "entries")
    if history.skipped:
        what = "was not an audit entry and is" if history.skipped == 1 else "were not audit entries and are"
        summary += f"; {plural(history.skipped, 'line')} of the logs {what} left out"
    lines.append(summary)
    return lines


def changed_fields(before: Any, after: Any) -> str:
    """`online_request: false -> true, service_url: "" -> "https://..."` for the fields that differ."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ""
    parts = [f"{_s(name)}: {_value(before.get(name))} -> {_value(after.get(name))}"
             for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]
    return ", ".join(parts)


def _value(value: Any) -> str:
    return escape(json.dumps(value, ensure_ascii=False))


def _s(value: Any) -> str:
    return escape(str(value))


def _list(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else ()
