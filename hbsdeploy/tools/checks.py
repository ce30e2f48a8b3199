"""One check result of `hbsdeploy doctor`, shared by its checks and `doctor --probe`."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from hbsdeploy.check.certs import expires_soon
from hbsdeploy.text import plural


class CheckStatus(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    NOTE = "note"  # what a check cannot test: neither a problem found nor a pass


@dataclass(frozen=True)
class Check:
    """The result of one check: `ok`, `warn`, `FAIL` or `note`, and one line saying what was found."""

    name: str
    status: CheckStatus
    detail: str

    def format(self) -> str:
        return f"{self.status.value:<4} {self.name}: {self.detail}"


def expiry(not_after: dt.datetime, now: dt.datetime) -> tuple[CheckStatus, str]:
    """A certificate's expiry: FAIL once expired, WARN within 30 days (check/certs.py), else OK; and in words."""
    days = (not_after - now).total_seconds() / 86400
    when = not_after.strftime("%Y-%m-%d")
    if not_after <= now:
        return CheckStatus.FAIL, f"expired on {when}"
    if expires_soon(not_after, now):
        return CheckStatus.WARN, f"expires on {when}, in {plural(int(days), 'day')}: renew it"
    return CheckStatus.OK, f"valid until {when} ({int(days)} days)"
