"""The stand-ins' test CA (devtools.tls) vouches for loopback names only, for a year; an older CA is replaced."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from devtools import tls
from devtools.tls import ensure_certificates, make_server_cert

LOOPBACK = [
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
]


def load(cert_dir):
    ca = x509.load_pem_x509_certificate((cert_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((cert_dir / "ca-key.pem").read_bytes(), password=None)
    server = x509.load_pem_x509_certificate((cert_dir / "server.pem").read_bytes())
    return ca, ca_key, server


def pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def verify(ca: x509.Certificate, leaf: x509.Certificate, name: x509.GeneralName) -> None:
    verifier = PolicyBuilder().store(Store([ca])).time(datetime.now(UTC)).build_server_verifier(name)
    verifier.verify(leaf, [])


def leaf_for(host: str, ca: x509.Certificate, ca_key) -> x509.Certificate:
    """What anyone holding ca-key.pem could issue: a server certificate for any name."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def unconstrained_ca(key, *, days: int = 3650) -> x509.Certificate:
    """The CA earlier versions made: ten years, no name constraints."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local Entra ID test CA (old)")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def test_the_ca_is_constrained_to_loopback_names_for_a_year(tmp_path):
    ensure_certificates(tmp_path)
    ca, _, _ = load(tmp_path)

    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert set(constraints.value.permitted_subtrees) == {
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    }
    assert not constraints.value.excluded_subtrees
    assert ca.not_valid_after_utc - ca.not_valid_before_utc <= timedelta(days=366)


def test_the_server_certificate_verifies_for_every_loopback_name(tmp_path):
    ensure_certificates(tmp_path)
    ca, _, server = load(tmp_path)
    for name in LOOPBACK:
        verify(ca, server, name)


def test_a_certificate_for_another_name_signed_by_the_ca_is_refused(tmp_path):
    ensure_certificates(tmp_path)
    ca, ca_key, _ = load(tmp_path)
    forged = leaf_for("example.com", ca, ca_key)

    with pytest.raises(VerificationError):
        verify(ca, forged, x509.DNSName("example.com"))
    # The same certificate from an unconstrained CA with the same key passes: the constraint is what refuses it.
    old = unconstrained_ca(ca_key)
    verify(old, leaf_for("example.com", old, ca_key), x509.DNSName("example.com"))


def test_an_unconstrained_ten_year_ca_on_disk_is_replaced_and_the_server_certificate_reissued(tmp_path):
    old_key = ec.generate_private_key(ec.SECP256R1())
    old_ca = unconstrained_ca(old_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ca.pem").write_bytes(old_ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca-key.pem").write_bytes(pem(old_key))
    (tmp_path / "server.pem").write_bytes(
        make_server_cert(server_key, old_ca, old_key, "127.0.0.1").public_bytes(serialization.Encoding.PEM)
    )
    (tmp_path / "server-key.pem").write_bytes(pem(server_key))

    ensure_certificates(tmp_path)
    ca, _, server = load(tmp_path)

    assert ca != old_ca
    assert ca.extensions.get_extension_for_class(x509.NameConstraints).critical
    server.verify_directly_issued_by(ca)
    verify(ca, server, x509.IPAddress(ipaddress.ip_address("127.0.0.1")))


def test_a_ca_about_to_expire_is_replaced(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(tls, "CA_LIFETIME", timedelta(days=10))
        ensure_certificates(tmp_path)
    old_ca, _, _ = load(tmp_path)

    ensure_certificates(tmp_path)
    ca, _, server = load(tmp_path)

    assert ca != old_ca and ca.not_valid_after_utc - datetime.now(UTC) > timedelta(days=300)
    server.verify_directly_issued_by(ca)


def test_a_current_ca_is_kept(tmp_path):
    ensure_certificates(tmp_path)
    first = (tmp_path / "ca.pem").read_bytes()
    ensure_certificates(tmp_path)
    assert (tmp_path / "ca.pem").read_bytes() == first


def test_a_host_the_ca_cannot_vouch_for_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"localhost, 127\.0\.0\.1 and ::1"):
        ensure_certificates(tmp_path, host="192.0.2.10")
