"""Reading the user certificates partners upload in Certificate Management."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

from hbsdeploy.files import FileRefused, read_bytes

# A certificate that expires within this many days (inclusive: exactly 30 days left warns) is a warning, in validate
# and in doctor alike.
EXPIRY_WARNING_DAYS = 30


def expires_soon(not_after: dt.datetime, now: dt.datetime) -> bool:
    """Whether a certificate valid at `now` expires within EXPIRY_WARNING_DAYS days (the boundary day included)."""
    return not_after - now <= dt.timedelta(days=EXPIRY_WARNING_DAYS)


class CertificateError(ValueError):
    """The file is not a readable PEM certificate; the message says why."""


@dataclass(frozen=True)
class CertificateInfo:
    """What hbsdeploy checks of a certificate."""

    subject_cn: str | None
    subject: str  # RFC 4514, for people finding the certificate in Certificate Management
    dns_names: tuple[str, ...]
    not_after: dt.datetime
    sha256: str  # of the DER encoding, lower-case hex: identifies the uploaded certificate

    def names(self) -> tuple[str, ...]:
        """SAN DNS names, else the CN (as TLS clients match)."""
        if self.dns_names:
            return self.dns_names
        return (self.subject_cn,) if self.subject_cn else ()

    def matches_host(self, host: str) -> bool:
        """True when a SAN or the CN covers `host` (a leading `*.` covers exactly one label)."""
        host = host.lower().rstrip(".")
        for name in self.names():
            name = name.lower().rstrip(".")
            if name == host:
                return True
            if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
                return True
        return False


MAX_CERTIFICATE_BYTES = 1024 * 1024  # a PEM certificate with its chain is a few KiB


@functools.cache
def read_certificate(path: Path) -> CertificateInfo:
    """Parse the first PEM certificate in `path`; CertificateError when it is missing or not PEM."""
    # Imported here: only partners with user certificates pay for loading cryptography.
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    try:  # a folder, a pipe or a device is never read (a pipe would block), a link loop is one line
        data = read_bytes(path, MAX_CERTIFICATE_BYTES, what="certificate file")
    except FileRefused as exc:
        if exc.rule == "file-not-found":
            raise CertificateError("file not found") from None
        if exc.rule == "file-too-large":
            raise CertificateError(f"is larger than {MAX_CERTIFICATE_BYTES // 1024} KiB; not a certificate file"
                                   ) from None
        raise CertificateError(str(exc)) from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise CertificateError("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError(f"is not a valid PEM certificate ({exc})") from None
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    return CertificateInfo(
        subject_cn=cn,
        subject=cert.subject.rfc4514_string() or "(empty subject)",
        dns_names=dns_names,
        not_after=cert.not_valid_after_utc,
        sha256=hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
    )
