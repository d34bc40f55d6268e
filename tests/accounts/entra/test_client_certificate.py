"""The app authenticates with a certificate (a signed client assertion) instead of a secret."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from accounts.models import User
from tests.accounts.entra.conftest import ALICE, legacy_user

pytestmark = pytest.mark.django_db


def certificate_pem(path) -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-accounts app")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return cert


@pytest.fixture
def certificate_app(entra, settings, tmp_path):
    cert = certificate_pem(tmp_path / "app.pem")
    settings.ENTRA_CLIENT_SECRET = ""
    settings.ENTRA_CLIENT_CERTIFICATE_FILE = str(tmp_path / "app.pem")
    settings.ENTRA_CLIENT_CERTIFICATE_THUMBPRINT = ""
    yield cert
    entra.client_certificates.clear()


def test_sign_in_with_a_registered_certificate(browser, entra, certificate_app):
    entra.client_certificates.append(certificate_app)
    legacy_user("alice@example.com")
    assert browser.sign_in(ALICE).status_code == 302
    assert User.objects.get(email="alice@example.com").azure_entra_id == ALICE.oid
    assert "client_secret" not in entra.token_requests[-1]
    assert entra.token_requests[-1]["client_assertion_type"].endswith("jwt-bearer")


def test_an_unregistered_certificate_is_refused(browser, certificate_app):
    alice = legacy_user("alice@example.com")
    response = browser.sign_in(ALICE)
    assert response.status_code == 400
    assert b"did not accept this sign-in" in response.content
    alice.refresh_from_db()
    assert alice.azure_entra_id is None
