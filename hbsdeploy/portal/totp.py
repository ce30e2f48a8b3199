"""Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA1, 30 s steps, 6 digits."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

STEP_SECONDS = 30
DIGITS = 6
MIN_SECRET_BYTES = 10  # 80 bits, the size authenticator apps issue (16 base32 characters)


class TotpSecretError(ValueError):
    """A TOTP secret that is not base32 or too short (the message never contains the secret)."""


def decode_secret(secret: str) -> bytes:
    """The key bytes of a base32 secret as authenticator apps show it (case, blanks and padding do not matter)."""
    text = "".join(secret.split()).upper().rstrip("=")
    try:
        key = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise TotpSecretError("the TOTP secret is not base32 (letters A-Z and digits 2-7)") from None
    if len(key) < MIN_SECRET_BYTES:
        raise TotpSecretError(f"the TOTP secret is shorter than {MIN_SECRET_BYTES} bytes "
                              f"({MIN_SECRET_BYTES * 8 // 5 + 1} base32 characters)")
    return key


def hotp(key: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226: the one-time password of `counter`."""
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def totp(secret: str, at: float, digits: int = DIGITS) -> str:
    """RFC 6238: the code of the 30-second step holding the Unix time `at`."""
    return hotp(decode_secret(secret), int(at // STEP_SECONDS), digits)


def verify_totp(secret: str, code: str, at: float, *, drift_steps: int = 1) -> bool:
    """Whether `code` is the code of the step at `at` or of up to `drift_steps` steps before or after it."""
    given = code.strip()
    if len(given) != DIGITS or not given.isascii() or not given.isdigit():
        return False
    key = decode_secret(secret)
    step = int(at // STEP_SECONDS)
    matches = [hmac.compare_digest(hotp(key, step + delta), given) for delta in range(-drift_steps, drift_steps + 1)]
    return any(matches)
