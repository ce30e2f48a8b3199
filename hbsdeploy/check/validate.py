"""`hbsdeploy validate`: every problem in every file, collected in one report."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hbsdeploy import __version__
from hbsdeploy.check.partial import NOTHING_REFUSED, partial_partner
from hbsdeploy.check.rules import check_partner
from hbsdeploy.errors import InputError, Problem, Severity, UsageError
from hbsdeploy.files import read_bytes
from hbsdeploy.load import schemacheck
from hbsdeploy.load.config import Config, Environment
from hbsdeploy.load.partner import (
    ID_KEYS,
    Partner,
    canonical_id,
    canonical_ids,
    partner_from_document,
    roles_of_id,
)
from hbsdeploy.load.schemaset import SchemaSet, stale_package_copies
from hbsdeploy.load.yamlload import MAX_FILE_BYTES, display_path, load_yaml
from hbsdeploy.paths import real_file_path, within
from hbsdeploy.text import escape

# Good enough to spot a partner ID in a file that is not being validated this run (pre-commit passes changed files).
_ID_LINE = re.compile(rb"^(operator_id|provider_id)[ \t]*:[ \t]*[\"']?([^\"'\s#]+)", re.MULTILINE)
# The ID keys on a line that is not a comment, and a double-quoted scalar with an escape (a key can be spelt so):
# where either is not one of the ID lines above, a file may declare a partner in YAML the scan does not read.
_ID_KEY = re.compile(rb"^(?![ \t]*#).*?(?:operator_id|provider_id)", re.MULTILINE)
_ESCAPE = re.compile(rb'"[^"\n]*\\')
_ROLE_OF_KEY = {key: role for role, key in ID_KEYS.items()}


def id_key(role: str, partner_id: str) -> tuple[str, str]:
    """The identity two partners are compared by: the role and the canonical ID (`DEA36` and `de*a36` are one
    operator; an operator `DE*A36` and a provider `DE-A36` are two partners, as OICP assigns both IDs to a company
    with both roles)."""
    return (role, canonical_id(role, partner_id))


@dataclass
class ValidationReport:
    """What validate found: the files it read and their problems, sorted and without repeats."""

    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    partners: list[Partner] = field(default_factory=list)  # the files that passed the schema
    checked_all: bool = False  # every partner file was checked: the templates are due too

    def add(self, problems: list[Problem]) -> None:
        self.problems.extend(problems)

    def finish(self) -> ValidationReport:
        # A rule checked in several environments reports the same line once; an error hides its own warning.
        unique = set(self.problems)
        errors_at = {(p.path, p.line, p.column, p.rule) for p in unique if p.severity is Severity.ERROR}
        self.problems = sorted(p for p in unique
                               if p.severity is Severity.ERROR or (p.path, p.line, p.column, p.rule) not in errors_at)
        return self

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]


def load_partner(path: Path, schemas: SchemaSet) -> Partner:
    """Load one partner file and check it against the partner schema in effect; InputError lists its problems."""
    document = load_yaml(path)
    if not isinstance(document.data, dict):
        raise InputError([document.problem((), "not-a-mapping",
                                           "must be a YAML mapping with name, role, environments and service_types "
                                           "(see partners/ for examples)")])
    problems = schemacheck.check(document, schemas.validator)
    if problems:
        raise InputError(problems)
    return partner_from_document(document)


@dataclass(frozen=True)
class CheckedFile:
    """One partner file checked: its problems, the partner if the schema passed it, and its well-formed part."""

    problems: list[Problem]
    partner: Partner | None = None  # schema-valid
    partial: Partner | None = None  # what passed the schema, when the environments it is deployed to are known


def check_partner_file(path: Path, config: Config, environments: list[Environment]) -> CheckedFile:
    """Every problem of one partner file: the schema's, and the portal rules' on every well-formed part of it."""
    try:
        document = load_yaml(path)
    except InputError as exc:
        return CheckedFile(exc.problems)
    if not isinstance(document.data, dict):
        return CheckedFile([document.problem((), "not-a-mapping",
                                             "must be a YAML mapping with name, role, environments and service_types "
                                             "(see partners/ for examples)")])
    found = schemacheck.findings(document, config.schemas.validator)
    partner: Partner | None = None
    if not any(not finding.deferred for finding in found):
        partner = partial = partner_from_document(document)
        refused = NOTHING_REFUSED
    else:
        built = partial_partner(document, found)
        if built is None:  # the rules cannot run: the schema reports everything, the rules' part too
            return CheckedFile([finding.problem for finding in found])
        partial, refused = built
    problems = check_partner(partial, config, environments, refused=refused)
    ruled = {(p.line, p.column) for p in problems}
    problems += [finding.problem for finding in found
                 if not finding.deferred or (finding.problem.line, finding.problem.column) not in ruled]
    return CheckedFile(problems, partner, partial)


def validate(config: Config, paths: list[Path] | None = None, environment: str | None = None, *,
             scan_others: bool = True) -> ValidationReport:
    """Validate the config and the partner files (all of them when `paths` is None) in one or all environments.

    Given paths, as pre-commit passes the changed files: the partner files among them; every partner file when
    hbsdeploy.yaml, a schema or a template is among them (a change there can break any partner), and then the report
    says so (`checked_all`): hbsdeploy.render.check adds the templates' problems to such a report.
    """
    if environment is not None and environment not in config.environments:
        known = ", ".join(sorted(config.environments))
        raise UsageError(f"--env {environment}: {config.shown} has no such environment; choose one of: {known}")
    config.schemas.check()  # a project schema hbsdeploy cannot use: one line naming its file and line
    report = ValidationReport()
    misplaced: list[Path] = []
    scanned: set[Path] = set()  # the files found in the partner folder (not named): links out of it are refused
    if paths is None:
        everything = True
        partner_paths = config.partner_files()
        scanned = set(partner_paths)
        misplaced = config.misplaced_partner_files()
        report.files = 1 + len(partner_paths) + len(misplaced)
    else:
        places = {path: config.partner_file_place(path) for path in paths}
        everything = any(place in ("config", "template", "schema") for place in places.values())
        named = [path for path, place in places.items() if place == "partner"]
        misplaced = [path for path, place in places.items() if place == "misplaced"]
        partner_paths = named
        if everything:
            given = {real_file_path(path) for path in named}
            scanned = {p for p in config.partner_files() if real_file_path(p) not in given}
            partner_paths = [*named, *sorted(scanned)]
            misplaced = sorted({*misplaced, *config.misplaced_partner_files()}, key=str)
        report.files = len(paths) + len(partner_paths) - len(named)
    environments: list[Environment] = (
        [config.environment(environment)] if environment else list(config.environments.values())
    )
    report.add([_misplaced(config, path) for path in misplaced])
    if everything:
        report.add([_stale_copy(path) for path in stale_package_copies(config.schemas_dir)])
        if not config.partners_dir.is_dir():
            report.add([_no_partner_folder(config)])
    partners: list[Partner] = []
    identified: list[Partner] = []  # every partner whose ID is well-formed, for the duplicate check
    for path in partner_paths:
        if path in scanned and _links_out_of(config.root, path):
            shown = os.path.join(display_path(path.parent), escape(path.name))  # the link, not its target
            report.add([Problem(shown, 1, 1, Severity.ERROR, "path-escapes-repository",
                                "is a symbolic link to a file outside the repository; copy the partner file into "
                                "the partner folder instead")])
            continue
        checked = check_partner_file(path, config, environments)
        report.add(checked.problems)
        if checked.partner is not None:
            partners.append(checked.partner)
        if checked.partial is not None and checked.partial.partner_id:
            identified.append(checked.partial)
    report.add(_duplicate_ids(identified, config, None if everything or not scan_others else partner_paths))
    report.partners = partners
    report.checked_all = everything
    return report.finish()


def _stale_copy(path: Path) -> Problem:
    return Problem(display_path(path), 1, 1, Severity.WARNING, "schema-copy-differs",
                   f"differs from hbsdeploy {__version__}'s {path.name}, which is the one hbsdeploy uses (only "
                   "partner.schema.json is the project's to change): an edit here changes nothing; delete the file "
                   "and run `hbsdeploy init` to get hbsdeploy's copy back")


def _no_partner_folder(config: Config) -> Problem:
    """A partner folder that does not exist: otherwise validate checks nothing and plan changes nothing, silently."""
    folder = display_path(config.partners_dir)
    message = (f"partner folder {folder} does not exist, so nothing is checked or planned; fix `partners:` or "
               "create it with the partner files (`hbsdeploy init` writes an example)")
    document = config.document
    if document is not None and isinstance(document.data, dict) and "partners" in document.data:
        return document.problem(("partners",), "partner-folder-missing", message)
    return Problem(config.shown, 1, 1, Severity.ERROR, "partner-folder-missing", message)


def _misplaced(config: Config, path: Path) -> Problem:
    folder = display_path(config.partners_dir)
    return Problem(display_path(path), 1, 1, Severity.ERROR, "partner-file-in-subfolder",
                   f"hbsdeploy reads partner files only directly in {folder}/, not in its subfolders, so this partner "
                   f"would never be deployed; move the file to {folder}/ (or out of {folder}/ if it is no partner)")


def _links_out_of(root: Path, path: Path) -> bool:
    """Whether `path` is a symbolic link leading out of `root` (already resolved); one lstat for a plain file."""
    if not path.is_symlink():
        return False
    try:
        return not within(root, path.resolve())
    except (OSError, RuntimeError):  # a link loop: reported as such when the file is read
        return False


def _duplicate_ids(partners: list[Partner], config: Config, checked: list[Path] | None) -> list[Problem]:
    first_seen: dict[tuple[str, str], Partner] = {}
    problems = []
    for partner in partners:
        other = first_seen.setdefault(partner.identity, partner)
        if other is not partner:
            line = other.document.position((other.id_key,))[0]
            problems.append(partner.document.problem(
                (partner.id_key,), "duplicate-partner-id",
                f"{_kind(partner)} {partner.written_id!r} is also used by {other.path}:{line}{_as(other, partner)}; "
                "one file per partner and role"))
    if checked is not None:
        problems += _duplicates_in_unchecked_files(first_seen, config, checked)
    return problems


def _as(other: Partner, partner: Partner) -> str:
    return "" if other.written_id == partner.written_id else f" (as {other.written_id!r})"


def _kind(partner: Partner) -> str:
    return "OperatorID" if partner.role == "cpo" else "ProviderID"


def _duplicates_in_unchecked_files(ids: dict[tuple[str, str], Partner], config: Config,
                                   checked: list[Path]) -> list[Problem]:
    """Partner IDs of the checked files that a partner file not checked this run also declares (found by a line scan,
    not a full load: pre-commit passes only the changed files, and this must stay fast for a thousand partners)."""
    if not ids:
        return []
    checked_files = set()
    for path in checked:
        try:
            checked_files.add(real_file_path(path))
        except (OSError, ValueError):
            continue
    problems = []
    for path in config.partner_files():
        if real_file_path(path) in checked_files:
            continue
        try:
            raw = read_bytes(path, MAX_FILE_BYTES)
        except OSError:  # a FIFO, device or unreadable file: reported where it is loaded
            continue
        for match in _ID_LINE.finditer(raw):
            role = _ROLE_OF_KEY[match.group(1).decode("ascii")]
            written = match.group(2).decode("utf-8", errors="replace")
            if role not in roles_of_id(written):
                continue  # not an ID of that role: the file's own validation says so
            partner = ids.get(id_key(role, written))
            if partner is not None:
                line = raw.count(b"\n", 0, match.start()) + 1
                problems.append(partner.document.problem(
                    (partner.id_key,), "duplicate-partner-id",
                    f"{_kind(partner)} {partner.written_id!r} is also used by {display_path(path)}:{line}"
                    f"{'' if written == partner.written_id else f' (as {written!r})'}; one file per partner and "
                    "role"))
    return problems


def files_declaring(config: Config, partner_ids: Sequence[str]) -> list[Path] | None:
    """The partner files whose ID line names one of `partner_ids` in any spelling of the same (role, canonical ID)
    (a line scan, no YAML parsed: what `plan --partner` validates instead of every file, so that a duplicate written
    another way, `DEA36` next to `DE*A36`, is among them and reported), and every file the scan cannot read (an ID
    key that is not such a line: quoted, tagged, anchored, its value on the next line, or an escape in a double-quoted
    scalar: a duplicate may be written so); or None when an ID is on no such line (written some other way: every
    file must be loaded to find it)."""
    wanted = {(role, canonical): partner_id for partner_id in partner_ids
              for role, canonical in canonical_ids(partner_id).items()}
    found: set[str] = set()
    paths = []
    for path in config.partner_files():
        try:
            raw = read_bytes(path, MAX_FILE_BYTES)
        except OSError:  # a FIFO, device or unreadable file: reported when validate loads it
            continue
        keys = [_line_key(match) for match in _ID_LINE.finditer(raw)]
        named = {wanted[key] for key in keys if key in wanted}
        unread = None in keys or len(_ID_KEY.findall(raw)) != len(keys) or _ESCAPE.search(raw) is not None
        if named or unread:
            paths.append(path)
            found |= named
    return paths if found == set(partner_ids) else None


def _line_key(match: re.Match[bytes]) -> tuple[str, str] | None:
    role = _ROLE_OF_KEY[match.group(1).decode("ascii")]
    written = match.group(2).decode("utf-8", errors="replace")
    return (role, canonical_id(role, written)) if role in roles_of_id(written) else None


def validation_failed(report: ValidationReport, strict: bool) -> bool:
    """Errors fail a run; so do warnings under --strict."""
    return bool(report.errors or (strict and report.warnings))

