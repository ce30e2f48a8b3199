"""The validated partners a command works on: every command but validate starts here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hbsdeploy.check.validate import files_declaring, validate
from hbsdeploy.errors import HbsError, InputError, Problem
from hbsdeploy.load.config import Config, Environment
from hbsdeploy.load.partner import Partner, identities_named
from hbsdeploy.load.schemacheck import show


@dataclass(frozen=True)
class Project:
    """Valid partners (errors refuse to load) and the warnings validation found."""

    config: Config
    partners: list[Partner]
    warnings: list[Problem] = field(default_factory=list)

    def in_environment(self, environment: Environment) -> list[Partner]:
        """The partners deployed to `environment`."""
        return [p for p in self.partners if environment.name in p.environments]


def load_project(config: Config, environment: Environment | None = None,
                 partner_ids: Sequence[str] = ()) -> Project:
    """Validate the partner files (refusing on any error), then select the partners named, or all. With
    `partner_ids`, only the files whose ID line names them in any spelling, and those whose ID the line scan cannot
    read, are loaded and validated (so a duplicate of a partner named is refused; other files' errors are validate's),
    every file when the scan does not find a partner named."""
    name = environment.name if environment else None
    report = None
    if partner_ids:
        paths = files_declaring(config, partner_ids)
        if paths is not None:
            report = validate(config, paths, name, scan_others=False)
            ids = {p.partner_id for p in report.partners}
            if not report.errors and not all(pid in ids for pid in partner_ids):
                report = None  # an ID line the scan misread (e.g. another partner's ID in a comment): load all
    if report is None:
        report = validate(config, None, name)
    if report.errors:
        raise InputError(report.errors)
    partners = sorted(report.partners, key=lambda p: (p.partner_id, p.role))
    if partner_ids:
        chosen = [select_partner(partners, pid) for pid in partner_ids]
        partners = list({p.identity: p for p in chosen}.values())
    return Project(config, partners, report.warnings)


def select_partner(partners: Sequence[Partner], requested: str) -> Partner:
    """The partner `--partner requested` names, compared as validate compares IDs: a partner whose canonical ID it
    is exactly (`DE*A36` is the operator, `DE-A36` the provider), else any whose canonical ID it has in its role
    (`dea36`); HbsError when none is, or when an operator and a provider both are (`identities_named`)."""
    named = set(identities_named(requested, (p.identity for p in partners)))
    found = [p for p in partners if p.identity in named]
    if len(found) == 1:
        return found[0]
    if found:
        both = " and ".join(f"{p.partner_id} ({p.role.upper()}, {p.path})" for p in found)
        raise HbsError(f"--partner {show(requested)} names both {both}; write the ID as the one you mean: "
                       f"{' or '.join(repr(p.partner_id) for p in found)}")
    known = ", ".join(p.partner_id for p in partners) or "none"
    raise HbsError(f"no partner file has ID {show(requested)} (--partner); known: {known}")
