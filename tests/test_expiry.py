"""One certificate-expiry boundary for validate and doctor: 30 days or fewer left is a warning."""

from __future__ import annotations

import datetime as dt

from hbsdeploy.check.certs import EXPIRY_WARNING_DAYS, expires_soon
from hbsdeploy.tools.checks import CheckStatus
from hbsdeploy.tools.checks import expiry as _expiry

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_the_boundary_day_warns_and_the_day_after_does_not() -> None:
    boundary = NOW + dt.timedelta(days=EXPIRY_WARNING_DAYS)
    assert EXPIRY_WARNING_DAYS == 30
    assert expires_soon(boundary, NOW)
    assert not expires_soon(boundary + dt.timedelta(seconds=1), NOW)


def test_doctor_uses_the_same_boundary() -> None:
    boundary = NOW + dt.timedelta(days=EXPIRY_WARNING_DAYS)
    assert _expiry(boundary, NOW)[0] is CheckStatus.WARN
    assert _expiry(boundary + dt.timedelta(seconds=1), NOW)[0] is CheckStatus.OK
    assert _expiry(NOW, NOW)[0] is CheckStatus.FAIL
