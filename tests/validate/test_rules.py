"""Portal rules that depend on time, on several files or on the environment chosen: user certificates generated
for the test (expiry is relative to now), duplicate partner IDs across files, and per-environment severity."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from hbsdeploy.check.validate import validate
from hbsdeploy.errors import UsageError
from hbsdeploy.load.config import load_config
from tests.helpers import working_directory
from tests.validate.helpers import DATA, validation_lines

NOW = dt.datetime.now(dt.timezone.utc)

PARTNER = """\
name: Certificate Operator
role: cpo
operator_id: "DE*CRT"
environments:
  sandbox:
  qa:
service_types:
  authorization:
    online_request: true
    service_url: https://oicp.cert-operator.example.com
    client_certification: true
    certificate: user
    certificate_file: certs/{name}.pem
"""


def write_certificate(path: Path, *, common_name: str, dns_names: list[str], not_after: dt.datetime) -> None:
    """A self-signed certificate with these names and end of validity."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(min(NOW, not_after) - dt.timedelta(days=365)).not_valid_after(not_after))
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]),
                                        critical=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with the corpus config and an empty partners/ folder."""
    root = tmp_path / "repo"
    (root / "partners").mkdir(parents=True)
    config = (DATA / "hbsdeploy.yaml").read_text().replace("partners: valid", "partners: partners")
    (root / "hbsdeploy.yaml").write_text(config)
    return root


def _certificate_lines(repo: Path, name: str, *, common_name: str = "oicp.cert-operator.example.com",
                       dns_names: tuple[str, ...] = ("oicp.cert-operator.example.com",),
                       not_after: dt.datetime = NOW + dt.timedelta(days=365)) -> list[str]:
    write_certificate(repo / "certs" / f"{name}.pem", common_name=common_name, dns_names=list(dns_names),
                      not_after=not_after)
    (repo / "partners" / "operator.yaml").write_text(PARTNER.format(name=name))
    with working_directory(repo):
        return validation_lines(load_config(repo / "hbsdeploy.yaml"), None)


def test_good_user_certificate(repo: Path) -> None:
    assert _certificate_lines(repo, "good") == []


def test_wildcard_san_covers_the_host(repo: Path) -> None:
    assert _certificate_lines(repo, "wildcard", common_name="other", dns_names=("*.cert-operator.example.com",)) == []


def test_expired_certificate_is_an_error(repo: Path) -> None:
    expired = NOW - dt.timedelta(days=2)
    assert _certificate_lines(repo, "expired", not_after=expired) == [
        f"partners/operator.yaml:13:23: error[certificate-expired]: certificate 'certs/expired.pem' expired on "
        f"{expired.date().isoformat()}; upload a renewed one"]


def test_certificate_expiring_within_30_days_is_a_warning(repo: Path) -> None:
    soon = NOW + dt.timedelta(days=10)
    assert _certificate_lines(repo, "soon", not_after=soon) == [
        f"partners/operator.yaml:13:23: warning[certificate-expiring]: certificate 'certs/soon.pem' expires on "
        f"{soon.date().isoformat()}, within 30 days; renew it"]


def test_certificate_valid_for_31_days_is_fine(repo: Path) -> None:
    assert _certificate_lines(repo, "month", not_after=NOW + dt.timedelta(days=31)) == []


def test_certificate_names_another_host_is_a_warning(repo: Path) -> None:
    assert _certificate_lines(repo, "other", common_name="oicp.elsewhere.example.com",
                              dns_names=("oicp.elsewhere.example.com", "www.elsewhere.example.com")) == [
        "partners/operator.yaml:13:23: warning[certificate-host-mismatch]: certificate 'certs/other.pem' names "
        "oicp.elsewhere.example.com, www.elsewhere.example.com, not the Service URL's host "
        "oicp.cert-operator.example.com"]


def test_common_name_counts_when_there_is_no_san(repo: Path) -> None:
    assert _certificate_lines(repo, "cn-only", dns_names=()) == []
    assert _certificate_lines(repo, "cn-other", common_name="oicp.elsewhere.example.com", dns_names=()) == [
        "partners/operator.yaml:13:23: warning[certificate-host-mismatch]: certificate 'certs/cn-other.pem' names "
        "oicp.elsewhere.example.com, not the Service URL's host oicp.cert-operator.example.com"]


def test_a_control_character_in_the_host_or_a_certificate_name_is_escaped(repo: Path) -> None:
    """Was: certificate-host-mismatch printed the Service URL's host raw, a NUL or an escape sequence reaching the
    terminal (issue 13 review)."""
    write_certificate(repo / "certs" / "ctl.pem", common_name="ctl", dns_names=["oicp\x1b[2J.example.com"],
                      not_after=NOW + dt.timedelta(days=365))
    text = PARTNER.format(name="ctl").replace("service_url: https://oicp.cert-operator.example.com",
                                              'service_url: "https://oicp\\0x.example\\ec.com"')
    (repo / "partners" / "operator.yaml").write_text(text)
    with working_directory(repo):
        lines = validation_lines(load_config(repo / "hbsdeploy.yaml"), None)
    mismatch = [line for line in lines if "certificate-host-mismatch" in line]
    assert mismatch == ["partners/operator.yaml:13:23: warning[certificate-host-mismatch]: certificate "
                        "'certs/ctl.pem' names oicp\\x1b[2J.example.com, not the Service URL's host "
                        "oicp\\x00x.example\\x1bc.com"], lines
    assert not any(char in line for line in lines for char in "\x00\x1b")


def test_duplicate_partner_ids_name_both_files_when_both_are_checked(repo: Path) -> None:
    shutil.copy(DATA / "valid" / "cpo.yaml", repo / "partners" / "a-first.yaml")
    copy = (DATA / "valid" / "cpo.yaml").read_text().replace('operator_id: "DE*A36"', "operator_id: DEA36")
    (repo / "partners" / "b-second.yaml").write_text(copy)
    config = load_config(repo / "hbsdeploy.yaml")
    expected = ["partners/b-second.yaml:4:14: error[duplicate-partner-id]: OperatorID 'DEA36' is also used by "
                "partners/a-first.yaml:4 (as 'DE*A36'); one file per partner and role"]
    with working_directory(repo):
        assert validation_lines(config, None) == expected
        assert validation_lines(config, [Path("partners/a-first.yaml"), Path("partners/b-second.yaml")]) == expected
        # pre-commit passes only the changed file: the other one is still found
        assert validation_lines(config, [Path("partners/b-second.yaml")]) == expected


def test_client_certification_off_is_the_same_warning_in_every_environment() -> None:
    """Issue 13, finding 2: no source makes Client Certification mandatory anywhere, PROD included; the onboarding
    guidance recommends it for a CPO's Authorization, so that is a warning, in every environment alike."""
    path = Path("invalid/rule-client-certification-off-prod-warning.yaml")
    with working_directory(DATA):
        config = load_config(DATA / "hbsdeploy.yaml")
        warning = (f"{path}:10:5: warning[client-certification-off]: Client Certification is not true in this CPO's "
                   "Authorization (Hubject's onboarding guidance says \"Client Certification: yes\" for service-type "
                   "Authorization); set client_certification: true")
        for environment in ("sandbox", "qa", "prod"):
            assert validation_lines(config, [path], environment) == [warning]


def test_the_seeds_reservation_is_valid_in_prod() -> None:
    """Issue 13, finding 2: "enable the Online Requests and then edit the Service URL", nothing else."""
    path = Path("valid/cpo-seed-reservation.yaml")
    with working_directory(DATA):
        config = load_config(DATA / "hbsdeploy.yaml")
        assert validation_lines(config, [path], "prod") == []


def test_authorization_switched_off_is_a_warning_and_reservation_alone_is_managed() -> None:
    """Issue 13, finding 6: the rule looks at Online Request, and a file may leave Authorization out."""
    path = Path("invalid/rule-cpo-needs-authorization-warning.yaml")
    with working_directory(DATA):
        config = load_config(DATA / "hbsdeploy.yaml")
        assert validation_lines(config, [path], "qa") == [
            f"{path}:7:21: warning[cpo-needs-authorization]: Hubject marks Authorization mandatory for a CPO; with "
            "Online Request off the platform forwards it no requests: set online_request: true unless you are "
            "leaving the platform"]


def test_private_hosts_allowed_only_in_the_sandbox() -> None:
    sandbox_only = Path("valid/sandbox-only-private-host.yaml")
    text = (DATA / sandbox_only).read_text().replace("  sandbox:\n", "  sandbox:\n  qa:\n")
    with working_directory(DATA):
        config = load_config(DATA / "hbsdeploy.yaml")
        assert validation_lines(config, [sandbox_only]) == []
    from hbsdeploy.check.rules import check_partner
    from hbsdeploy.load.partner import partner_from_document
    from hbsdeploy.load.yamlload import parse_yaml

    partner = partner_from_document(parse_yaml(text, "p.yaml"))
    rules = sorted(p.rule for p in check_partner(partner, config, config.environments.values()))
    assert rules == ["service-url-private-host", "service-url-private-host"]
    assert check_partner(partner, config, [config.environments["sandbox"]]) == []


def test_unknown_env_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--env staging: .* choose one of: prod, qa, sandbox"):
        validate(load_config(DATA / "hbsdeploy.yaml"), None, "staging")


def test_two_user_certificates_in_one_account_are_a_warning(repo: Path) -> None:
    """Issue 13, finding 3: Certificate Management reads as one User certificate per account (a judgement, so a
    warning); one file for several service types is fine."""
    for name in ("one", "two"):
        write_certificate(repo / "certs" / f"{name}.pem", common_name="oicp.cert-operator.example.com",
                          dns_names=["oicp.cert-operator.example.com"], not_after=NOW + dt.timedelta(days=365))
    reservation = ("  reservation:\n    online_request: true\n    service_url: https://oicp.cert-operator.example.com/r\n"
                   "    certificate: user\n    certificate_file: certs/{name}.pem\n")
    partner = repo / "partners" / "operator.yaml"
    partner.write_text(PARTNER.format(name="one") + reservation.format(name="one"))
    with working_directory(repo):
        assert validation_lines(load_config(repo / "hbsdeploy.yaml"), None) == []
    partner.write_text(PARTNER.format(name="one") + reservation.format(name="two"))
    with working_directory(repo):
        assert validation_lines(load_config(repo / "hbsdeploy.yaml"), None) == [
            "partners/operator.yaml:18:23: warning[certificate-per-account]: reservation names the User certificate "
            "'certs/two.pem', authorization names 'certs/one.pem'; Hubject's Certificate Management describes one "
            "User certificate per partner account: use one file unless Hubject confirmed a certificate per service "
            "type"]
