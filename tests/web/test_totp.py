"""TOTP (RFC 6238) against the RFC's own test vectors, and the drift window the replica accepts."""

from __future__ import annotations

import pytest

from hbsdeploy.portal.totp import TotpSecretError, decode_secret, hotp, totp, verify_totp

RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of b"12345678901234567890", RFC 6238 appendix B (SHA-1)


@pytest.mark.parametrize(("at", "expected"), [
    (59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (1234567890, "89005924"),
    (2000000000, "69279037"), (20000000000, "65353130"),
])
def test_rfc_6238_vectors(at: int, expected: str) -> None:
    assert totp(RFC_SECRET, at, digits=8) == expected
    assert totp(RFC_SECRET, at) == expected[-6:]


def test_rfc_4226_vectors() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
    assert [hotp(b"12345678901234567890", counter) for counter in range(10)] == expected


def test_one_step_of_drift_either_way_and_no_more() -> None:
    now = 1_700_000_000.0
    code = totp(RFC_SECRET, now)
    assert verify_totp(RFC_SECRET, code, now)
    assert verify_totp(RFC_SECRET, code, now + 30) and verify_totp(RFC_SECRET, code, now - 30)
    assert not verify_totp(RFC_SECRET, code, now + 60) and not verify_totp(RFC_SECRET, code, now - 60)
    assert verify_totp(RFC_SECRET, f" {code} ", now)
    for wrong in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        assert not verify_totp(RFC_SECRET, wrong, now)


def test_secrets_as_apps_show_them_and_bad_ones() -> None:
    assert decode_secret("gezd gnbv gy3t qojq gezd gnbv gy3t qojq") == b"12345678901234567890"
    with pytest.raises(TotpSecretError, match="not base32") as bad:
        decode_secret("NOT-BASE32!")
    assert "NOT-BASE32" not in str(bad.value)
    with pytest.raises(TotpSecretError, match="shorter than 10 bytes"):
        decode_secret("GEZDGNBV")
