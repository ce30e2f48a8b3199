"""The validated partners a command works on: every command but validate starts here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hbsdeploy.check.validate import validate
from hbsdeploy.errors import HbsError, InputError, Problem
from hbsdeploy.load.config import Config, Environment
from hbsdeploy.load.partner import Partner


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
    """Validate every partner file (refusing on any error), then select the partners named, or all."""
    report = validate(config, None, environment.name if environment else None)
    if report.errors:
        raise InputError(report.errors)
    partners = sorted(report.partners, key=lambda p: p.partner_id)
    if partner_ids:
        by_id = {p.partner_id: p for p in partners}
        unknown = [pid for pid in partner_ids if pid not in by_id]
        if unknown:
            known = ", ".join(sorted(by_id)) or "none"
            raise HbsError(f"no partner file has ID {', '.join(map(repr, unknown))} (--partner); known: {known}")
        partners = [by_id[pid] for pid in dict.fromkeys(partner_ids)]
    return Project(config, partners, report.warnings)
