"""The test CA of the local stand-in servers and the server certificates it issues.

The CA is kept in a directory (``ca.pem``, ``ca-key.pem``) and reused, so a
developer trusts it once a year; its name constraints keep it to localhost,
127.0.0.1 and ::1, so even a leaked ``ca-key.pem`` vouches for nothing else.
Processes that start servers at once (test workers, ``run_local_entra``) share
the directory under a file lock, and every file is replaced atomically.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: certificate generation is then not guarded across processes
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# A CA someone trusts on their machine: a year, and name constraints so that it can
# vouch for localhost, 127.0.0.1 and ::1 only, even if ca-key.pem leaks.
CA_LIFETIME = timedelta(days=365)
CA_PERMITTED_NAMES = (
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
    x509.IPAddress(ipaddress.ip_network("::1/128")),
)
# Apple platforms refuse TLS server certificates valid for more than 825 days, even
# under a locally trusted CA; the leaf is renewed from the CA (and ends with it).
SERVER_CERT_LIFETIME = timedelta(days=825)
SERVER_CERT_RENEW_BEFORE = timedelta(days=30)


def server_context(cert_dir: Path, *, host: str = "127.0.0.1") -> ssl.SSLContext:
    """A TLS server context with the certificate the CA in ``cert_dir`` issues for ``host``."""
    _, cert_path, key_path = ensure_certificates(cert_dir, host=host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


def ensure_certificates(cert_dir: Path, *, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """Return (ca.pem, server.pem, server-key.pem) in ``cert_dir``, creating what is missing.

    An existing CA is reused, so it needs to be trusted only once a year; it is
    replaced when it is about to expire or lacks the name constraints (made by an
    earlier version). The server certificate is reissued from it (``ca-key.pem``)
    when it is missing, about to expire, issued by another CA, or does not name ``host``.
    """
    if not all(_is_permitted(name) for name in _san_entries(host)):
        raise ValueError(f"the local test CA vouches for localhost, 127.0.0.1 and ::1 only, not {host!r}")
    cert_dir = Path(cert_dir)
    cert_dir.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = cert_dir / "ca.pem", cert_dir / "server.pem", cert_dir / "server-key.pem"
    ca_key_path = cert_dir / "ca-key.pem"
    with _file_lock(cert_dir / ".lock"):
        ca_problem = _ca_problem(ca_path)
        if ca_problem:
            ca_key = ec.generate_private_key(ec.SECP256R1())
            ca_cert = _make_ca(ca_key)
            _write_private_key(ca_key_path, ca_key)
            _write_atomic(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM))
            if ca_problem != "missing":
                logger.warning("local servers: replaced the test CA %s (%s); trust the new one", ca_path, ca_problem)
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        problem = _server_cert_problem(cert_path, key_path, ca_cert, host)
        if problem:
            if not ca_key_path.exists():
                if problem == "expires soon":
                    return ca_path, cert_path, key_path
                raise RuntimeError(f"{cert_path}: {problem}, and {ca_key_path} is missing to issue another")
            ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
            server_key = ec.generate_private_key(ec.SECP256R1())
            server_cert = make_server_cert(server_key, ca_cert, ca_key, host)  # type: ignore[arg-type]
            _write_private_key(key_path, server_key)
            _write_atomic(cert_path, server_cert.public_bytes(serialization.Encoding.PEM))
            logger.info("local servers: issued a server certificate in %s (%s)", cert_dir, problem)
    return ca_path, cert_path, key_path


def _make_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Local stand-in servers (development only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Local stand-ins test CA {secrets.token_hex(4)}"),
        ]
    )
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.NameConstraints(permitted_subtrees=list(CA_PERMITTED_NAMES), excluded_subtrees=None), critical=True
        )
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


def _ca_problem(ca_path: Path) -> str | None:
    if not ca_path.exists():
        return "missing"
    ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return "no name constraints"
    if (
        not constraints.critical
        or set(constraints.value.permitted_subtrees or ()) != set(CA_PERMITTED_NAMES)
        or constraints.value.excluded_subtrees
    ):
        return "other name constraints"
    if ca_cert.not_valid_after_utc - ca_cert.not_valid_before_utc > CA_LIFETIME + timedelta(days=1):
        return "valid for more than a year"
    if ca_cert.not_valid_after_utc - datetime.now(UTC) < SERVER_CERT_RENEW_BEFORE:
        return "expires soon"
    return None


def _is_permitted(name: x509.GeneralName) -> bool:
    if isinstance(name, x509.IPAddress):
        return any(
            isinstance(permitted, x509.IPAddress) and name.value in permitted.value for permitted in CA_PERMITTED_NAMES
        )
    return name in CA_PERMITTED_NAMES


def _san_entries(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    if host and host not in ("localhost", "127.0.0.1", "::1", "0.0.0.0", "::"):  # noqa: S104 - compared, not bound
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_server_cert(
    key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, host: str
) -> x509.Certificate:
    now = datetime.now(UTC)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(min(now + SERVER_CERT_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(_san_entries(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _server_cert_problem(cert_path: Path, key_path: Path, ca_cert: x509.Certificate, host: str) -> str | None:
    if not cert_path.exists() or not key_path.exists():
        return "missing"
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not issued by ca.pem"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return f"does not name {host}"
    if not all(name in san for name in _san_entries(host)):
        return f"does not name {host}"
    now = datetime.now(UTC)
    if cert.not_valid_after_utc <= now:
        return "expired"
    if cert.not_valid_after_utc - now < SERVER_CERT_RENEW_BEFORE:
        return "expires soon"
    return None


@contextlib.contextmanager
def _file_lock(path: Path):
    if fcntl is None:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_atomic(path, pem, mode=0o600)
