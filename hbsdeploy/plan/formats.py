"""Renderings of a plan: text (terraform-like), JSON, Markdown for pull requests, and portal instructions.

`PLAN_FORMATS` is the one registry of them (name -> renderer) that `plan --format`, `apply` and any later command
showing a plan use: a new format is a function taking the plan and the `FormatOptions`, and one entry there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hbsdeploy.load.config import Environment
from hbsdeploy.load.settings import DEFAULT_SETTINGS, SETTING_FIELDS
from hbsdeploy.plan.model import NO_PARTNER_FILE, Change, ChangeKind, Plan, Unmanaged
from hbsdeploy.text import escape, escape_controls, plural

MARKDOWN_LIMIT = 60_000
MARKDOWN_MARKER = "<!-- hbsdeploy-plan -->"

_SYMBOL = {ChangeKind.ENABLE: "+", ChangeKind.CHANGE: "~", ChangeKind.DISABLE: "-"}
_COLOUR = {ChangeKind.ENABLE: "green", ChangeKind.CHANGE: "yellow", ChangeKind.DISABLE: "red"}
_ANSI = {"green": "\033[32m", "yellow": "\033[33m", "red": "\033[31m", "bold": "\033[1m"}
_RESET = "\033[0m"

Styler = Callable[[str, str], str]


def plain(text: str, _style: str) -> str:
    """No styling: for files, pipes and NO_COLOR."""
    return text


def ansi(text: str, style: str) -> str:
    """Colour for a terminal; the CLI passes it only to a TTY without NO_COLOR."""
    return f"{_ANSI[style]}{text}{_RESET}"


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)


def summary_line(plan: Plan) -> str:
    s = plan.summary()
    return f"Plan: {s['enable']} to enable, {s['change']} to change, {s['disable']} to disable."


Labels = Mapping[str, str]  # service type -> the label the portal shows (the project's partner schema)


def package_labels() -> Labels:
    """The labels of hbsdeploy's own partner schema: for a plan shown outside any repository."""
    from hbsdeploy.load.schemaset import package_schemas

    return package_schemas().labels()


def _label(service_type: str, labels: Labels | None) -> str:
    return (package_labels() if labels is None else labels).get(service_type, service_type)


def plan_notes(plan: Plan) -> list[str]:
    """What every format says beside the changes: whether apply needs the permission to disable, and whether it
    has it (given at plan time, under the checksum)."""
    notes = []
    if plan.recorded is not None:
        notes.append(f"Before: {plan.recorded.describe()}.")
    check = plan.disable_check
    if check is not None and check.needs_permission:
        if check.allowed:
            notes.append(f"Disables allowed: this plan {check.describe()}; the permission was given when it was "
                         "made (plan --allow-disables) and is covered by its checksum, so apply will make them.")
        else:
            notes.append(f"Needs permission: this plan {check.describe()}; apply will refuse it. If this is "
                         "intended, plan again with --allow-disables and have that plan reviewed.")
    return notes


UNMANAGED_SHOWN = 50  # the rest are counted; JSON lists them all


def unmanaged_lines(plan: Plan) -> list[str]:
    """What the portal keeps that no partner file manages: a heading, one line each (at most UNMANAGED_SHOWN), and
    how to switch one off; none when there is nothing."""
    if not plan.unmanaged:
        return []
    lines = [f"No longer managed in {plan.environment} ({len(plan.unmanaged)}; hbsdeploy leaves them as the portal "
             "keeps them):"]
    for item in plan.unmanaged[:UNMANAGED_SHOWN]:
        lines.append(f"  ! {escape(item.partner_id)} / {escape(item.service_type)}: {_unmanaged_why(item, plan)}; "
                     f"the portal keeps {_kept(item.settings)}")
    if len(plan.unmanaged) > UNMANAGED_SHOWN:
        lines.append(f"  ... and {len(plan.unmanaged) - UNMANAGED_SHOWN} more (all of them: --format json)")
    lines.append("To switch one off, set `online_request: false` for it in its partner file (add the file back for a "
                 "deleted one) and apply.")
    return lines


def _unmanaged_why(item: Unmanaged, plan: Plan) -> str:
    if item.reason == NO_PARTNER_FILE:
        return f"no partner file deploys it to {plan.environment}"
    return "its partner file no longer has this service type"


def _kept(settings: Mapping[str, Any]) -> str:
    """The settings that differ from the portal's defaults, as `online_request true, service_url "..."`."""
    shown = [f"{name} {_value(settings[name])}" for name in SETTING_FIELDS
             if name in settings and settings[name] != DEFAULT_SETTINGS[name]]
    return ", ".join(shown) or "its defaults"


def render_text(plan: Plan, style: Styler = plain) -> str:
    """`~ DE*A36 / authorization` blocks with one line per field, then the summary line."""
    notes = "".join(f"{note}\n" for note in [*plan_notes(plan), *unmanaged_lines(plan)])
    if not plan.has_changes:
        return (f"No changes in {plan.environment}: the portal matches the partner files "
                f"({plural(len(plan.observed), 'service type')} checked).\n") + notes
    lines = [f"hbsdeploy will make these changes in {style(plan.environment, 'bold')}:", ""]
    for change in plan.changes:
        symbol = style(_SYMBOL[change.kind], _COLOUR[change.kind])
        lines.append(f"  {symbol} {change.partner_id} ({escape(change.partner_name)}) / {change.service_type} "
                     f"[{change.kind.value}]")
        for item in change.fields:
            field = f"{change.service_type}.{item.field}"
            lines.append(f"      {symbol} {field}: {_value(item.before)} -> {_value(item.after)}")
        lines.append("")
    lines.append(summary_line(plan) + f" {plan.unchanged} unchanged.")
    lines.append(f"Checksum: {plan.checksum}")
    return "\n".join(lines) + "\n" + notes


def render_json(plan: Plan) -> str:
    """The plan's canonical JSON (format_version, checksum, every change with before and after)."""
    return plan.to_json()


def _md_code(value: Any) -> str:
    # A pipe ends a table cell even inside a code span unless escaped; a backtick would end the span.
    return "`" + _value(value).replace("`", "'").replace("|", "\\|") + "`"


def render_markdown(plan: Plan, limit: int = MARKDOWN_LIMIT, labels: Labels | None = None) -> str:
    """A pull-request comment: a summary table, then details, cut to stay under `limit` characters."""
    s = plan.summary()
    head = [
        MARKDOWN_MARKER,
        f"### hbsdeploy plan for `{plan.environment}`",
        "",
        "| enable | change | disable | unchanged |",
        "|---:|---:|---:|---:|",
        f"| {s['enable']} | {s['change']} | {s['disable']} | {s['unchanged']} |",
        "",
    ]
    head += [_md_note(note) for note in plan_notes(plan)]
    unmanaged = _markdown_unmanaged(plan)
    if not plan.has_changes:
        head.append("No changes: the portal matches the partner files.")
        return "\n".join(head + unmanaged) + "\n"
    tail = [*unmanaged, "", f"Checksum: `{plan.checksum}`", ""]
    if plan.portal:
        tail += ["Portal: `" + plan.portal.replace("`", "'") + "`", ""]
    budget = limit - len("\n".join(head + tail)) - 200
    body: list[str] = []
    shown = 0
    for change in plan.changes:
        block = _markdown_change(change, labels)
        if len(block) > budget:
            break
        body.append(block)
        budget -= len(block) + 1
        shown += 1
    if shown < len(plan.changes):
        rest = plan.changes[shown:]
        counts = {kind: sum(1 for c in rest if c.kind is kind) for kind in ChangeKind}
        body.append(f"\n…and {plural(len(rest), 'more change')} not shown here ({counts[ChangeKind.ENABLE]} enable, "
                    f"{counts[ChangeKind.CHANGE]} change, {counts[ChangeKind.DISABLE]} disable): "
                    "see the plan artifact or `hbsdeploy plan` output.")
    return "\n".join(head + body + tail)


def _markdown_change(change: Change, labels: Labels | None) -> str:
    lines = [
        f"<details><summary><code>{_SYMBOL[change.kind]}</code> <b>{_html(change.partner_id)}</b> "
        f"({_html(escape(change.partner_name))}) / {_html(_label(change.service_type, labels))}: "
        f"{change.kind.value}</summary>",
        "",
        "| field | before | after |",
        "|---|---|---|",
    ]
    for item in change.fields:
        lines.append(f"| {item.field} | {_md_code(item.before)} | {_md_code(item.after)} |".replace("|`", "| `"))
    lines += ["", "</details>"]
    return "\n".join(lines)


def _markdown_unmanaged(plan: Plan) -> list[str]:
    if not plan.unmanaged:
        return []
    lines = ["", f"#### No longer managed ({len(plan.unmanaged)}): hbsdeploy leaves these as the portal keeps them",
             "", "| partner | service type | why | the portal keeps |", "|---|---|---|---|"]
    for item in plan.unmanaged[:UNMANAGED_SHOWN]:
        why, kept = _md_text(_unmanaged_why(item, plan)), _md_text(_kept(item.settings))
        lines.append(f"| {_html(item.partner_id)} | {_html(item.service_type)} | {why} | {kept} |")
    if len(plan.unmanaged) > UNMANAGED_SHOWN:
        lines.append(f"\n…and {len(plan.unmanaged) - UNMANAGED_SHOWN} more: see the plan artifact (JSON).")
    lines += ["", "To switch one off, set `online_request: false` for it in its partner file (add the file back for "
                  "a deleted one)."]
    return lines


def _md_note(note: str) -> str:
    """`Title: text` as a quoted Markdown paragraph with the title in bold."""
    title, _, text = note.partition(":")
    return f"> **{_md_text(title)}:**{_md_text(text)}\n"


def _md_text(text: str) -> str:
    # Plain text in Markdown: no HTML, no emphasis or links from the values of a plan.
    return _html(text).replace("*", "\\*").replace("_", "\\_").replace("[", "\\[").replace("`", "'")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;")


# Hubject's onboarding text names them: the portal of each platform environment.
HUBJECT_PORTALS = {"QA": "https://portal-qa.hubject.com", "PROD": "https://portal.hubject.com"}


def render_instructions(plan: Plan, portal_label: str = "the HBS portal", *, during_apply: bool = False,
                        portal_address: str | None = None, description: str | None = None,
                        hubject_portal: bool = False, labels: Labels | None = None) -> str:
    """Numbered steps for a person making the plan's changes in the portal's web interface (`during_apply`: apply
    asks for each service type next, so the closing hint to run apply is left out)."""
    notes = [f"Note: {note}" for note in plan_notes(plan)]
    unmanaged = unmanaged_lines(plan)
    if unmanaged:
        unmanaged = ["", *unmanaged[:-1], "Leave them as they are in the portal: these steps do not change them."]
    if not plan.has_changes:
        return "".join(f"{line}\n" for line in
                       [f"Nothing to do in {plan.environment}: the portal matches the partner files.", *notes,
                        *unmanaged])
    described = f" ({escape(description)})" if description else ""
    where = f"the HBS portal at {portal_address}" if portal_address else portal_label
    lines = [f"Steps for {plan.environment}{described} in {where} "
             f"({plural(len(plan.changes), 'service type')}):", *notes, ""]
    step = 0

    def add(text: str) -> None:
        nonlocal step
        step += 1
        lines.append(f"{step}. {text}")

    if portal_address:
        add(f"Open {portal_address} and log in as a user with the Partner Account Administrator role.")
    elif not hubject_portal:
        add("Log in as a user with the Partner Account Administrator role.")
    else:
        add(f"Open the HBS portal ({' or '.join(f'{url} for {name}' for name, url in HUBJECT_PORTALS.items())}; "
            "set `url:` of the environment in hbsdeploy.yaml to name one here) and log in as a user with the "
            "Partner Account Administrator role.")
    current_partner = None
    for change in plan.changes:
        if change.partner_id != current_partner:
            current_partner = change.partner_id
            lines.append("")
            lines.append(f"Partner {change.partner_id} ({escape(change.partner_name)}):")
            add(f"Make sure you are working on partner {change.partner_id} "
                "(switch the partner account if you manage several).")
            add("Open Administration > Service Type Settings.")
        for text in change_steps(change, labels):
            add(text)
    lines.append("")
    if during_apply:
        lines.append("Confirm each service type below once its steps are done in the portal.")
    else:
        lines.append(f"Then, at a terminal, record what you did (for a `manual` portal): `hbsdeploy apply --env "
                     f"{plan.environment}` confirms step by step, or `hbsdeploy state record --env {plan.environment} "
                     "--reason ...` records steps already done; commit the state file it writes, and check with "
                     f"`hbsdeploy plan --env {plan.environment}` that nothing is left.")
    lines += unmanaged
    return "\n".join(lines) + "\n"


def change_steps(change: Change, labels: Labels | None = None) -> list[str]:
    """The clicks for one service type, in the order the portal allows them (Online Request first on, last off); a
    field the service type does not have is in neither `before` nor `after`, and gets no step."""
    label = _label(change.service_type, labels)
    after, before = change.after, change.before
    steps = [f"Choose the service type \"{label}\" and click Edit (top right)."]
    if before["online_request"] and not after["online_request"]:
        # Only the box the portal needs: Broadcast and the Service URL depend on it (the plan keeps the rest).
        return [*steps, "Untick \"Online Request\".", _UPDATE]
    if after["online_request"] and not before["online_request"]:
        steps.append("Tick \"Online Request\".")
    if before.get("broadcast_request") != after.get("broadcast_request"):
        steps.append(("Tick" if after["broadcast_request"] else "Untick") + " \"Broadcast Request\".")
    if before.get("service_url") != after.get("service_url") and after.get("service_url"):
        clear = "Clear \"Service URL\" and type" if before["service_url"] else "Type into \"Service URL\":"
        steps.append(f"{clear} {after['service_url']} (no blank spaces).")
    if before.get("client_certification") != after.get("client_certification"):
        steps.append(("Tick" if after["client_certification"] else "Untick") + " \"Client Certification\".")
    if ((before.get("certificate"), before.get("certificate_sha256"))
            != (after.get("certificate"), after.get("certificate_sha256"))):
        if after["certificate"] == "user":
            steps.append(f"Under \"Server certification\", choose \"User certificate\": {_certificate(change)} "
                         "(upload it in Certificate Management first if it is not listed).")
        else:
            steps.append("Under \"Server certification\", choose \"Hubject certificate\".")
    steps.append(_UPDATE)
    return steps


_UPDATE = "Click \"Update Service Type\" (Cancel would discard the change)."


def _certificate(change: Change) -> str:
    """A User certificate as a person finds it: file, subject and expiry, then the fingerprint."""
    info = change.certificate or {}
    sha256 = change.after["certificate_sha256"]
    if not info:
        return f"the certificate with SHA-256 fingerprint {sha256}"
    subject = escape_controls(str(info["subject"]))  # RFC 4514 escapes its own commas: one backslash, not two
    return f"{escape(str(info['file']))} (subject {subject}, expires {info['not_after']}, SHA-256 {sha256})"


@dataclass(frozen=True)
class FormatOptions:
    """What a rendering may use beyond the plan: colour (text), the portal's name and the apply context
    (instructions)."""

    colour: bool = False
    portal_label: str = "the HBS portal"
    during_apply: bool = False
    portal_address: str | None = None  # the portal's web address, named in instructions
    description: str | None = None  # the environment's description
    hubject_portal: bool = False  # the environment is Hubject's own portal (manual, web): name its addresses
    labels: Labels | None = None  # the project's service-type labels (None: hbsdeploy's own schema's)

    @classmethod
    def for_environment(cls, environment: Environment, *, colour: bool = False,
                        during_apply: bool = False) -> FormatOptions:
        """The options that name `environment`'s portal: its label, web address and description."""
        from hbsdeploy.portal import portal_label

        return cls(colour=colour, portal_label=portal_label(environment), during_apply=during_apply,
                   portal_address=environment.portal_address, description=environment.description,
                   hubject_portal=environment.kind in ("manual", "web"), labels=environment.schemas.labels())


PlanRenderer = Callable[[Plan, FormatOptions], str]


@dataclass(frozen=True)
class PlanFormat:
    """One output format of a plan: its renderer and the line `--help` shows for it."""

    render: PlanRenderer
    help: str


def _text(plan: Plan, options: FormatOptions) -> str:
    return render_text(plan, ansi if options.colour else plain)


def _json(plan: Plan, _options: FormatOptions) -> str:
    return render_json(plan)


def _markdown(plan: Plan, options: FormatOptions) -> str:
    return render_markdown(plan, labels=options.labels)


def _instructions(plan: Plan, options: FormatOptions) -> str:
    return render_instructions(plan, options.portal_label, during_apply=options.during_apply,
                               portal_address=options.portal_address, description=options.description,
                               hubject_portal=options.hubject_portal, labels=options.labels)


PLAN_FORMATS: Mapping[str, PlanFormat] = MappingProxyType({
    "text": PlanFormat(_text, "every change field by field, then a summary (coloured on a terminal)"),
    "json": PlanFormat(_json, "the plan file's canonical JSON"),
    "markdown": PlanFormat(_markdown, "a pull-request comment"),
    "instructions": PlanFormat(_instructions, "numbered steps for a person in the portal"),
})


def render_plan(plan: Plan, format_name: str, options: FormatOptions | None = None) -> str:
    """The plan in the format `format_name` of PLAN_FORMATS (KeyError naming the known ones if there is none)."""
    try:
        plan_format = PLAN_FORMATS[format_name]
    except KeyError:
        raise KeyError(f"no plan format {format_name!r}; known: {', '.join(PLAN_FORMATS)}") from None
    return plan_format.render(plan, options or FormatOptions())
