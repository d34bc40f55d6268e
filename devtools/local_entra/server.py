"""A local stand-in for Microsoft Entra ID (v2.0 endpoints) and Microsoft Graph.

For tests, and for trying the project out on a machine with no network. One
HTTPS server (standard library ``http.server`` in a daemon thread) answers both
the authority and Graph paths::

    with LocalEntra(cert_dir=tmp_path, users=[alice], tenant_id=TID, client_id=CID, client_secret="s") as entra:
        app = msal.ConfidentialClientApplication(
            CID, client_credential="s", authority=entra.authority(), instance_discovery=False,
            http_client=core.http.session(ca_bundle=str(entra.ca_path)),
        )

It follows Entra where the project could tell the difference, and says so where
it does not:

- Access tokens for Graph are v1 tokens (``ver`` "1.0"), as Entra issues them
  whatever endpoint was used; their ``iss`` is ``{url}/{tid}/`` where Entra's is
  ``https://sts.windows.net/{tid}/``. Tokens for ``api_audience`` are v2 unless
  ``api_token_version=1``.
- ``sub`` is pairwise (per user and audience), as Entra's is: it is not the oid.
- The discovery document of "organizations"/"common" carries the literal
  ``{tenantid}`` issuer template.
- Any user can sign in at any tenant's endpoints; Entra would sign in at a concrete
  tenant only its own users (``strict_tenants=True``), so a user of another tenant
  gets a token with their own ``tid`` only through "organizations" or "common".
- Refresh tokens stay valid after use (Entra does not rotate them out) until
  ``revoke_refresh_tokens``.
- PKCE (S256) is required on every authorization request; Entra only requires it
  of public clients. There is no browser session: ``prompt=none`` always answers
  ``login_required``.
- Graph's ``/me`` returns companyName and department without ``$select``; real
  Graph does not (set ``graph_strict_select = True`` to get Graph's behaviour).

Tests steer it through attributes (``jwks_down``, ``next_authorize_error``,
``id_token_hook``, ``clock_offset``, ``users`` keyed by oid), read what it saw
(``issued``, ``token_requests``, ``jwks_requests``, ``logout_requests``,
``graph_requests``), forge tokens with ``sign``/``id_token``/``access_token``, and
play the browser with ``sign_in``.

The server certificate comes from a CA kept in ``cert_dir`` (``ca.pem``), so a
development CA can be trusted once a year; its name constraints keep it to
localhost, 127.0.0.1 and ::1.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core import http as entra_http

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: certificate generation is then not guarded across processes
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
TENANT_ALIASES = frozenset({"organizations", "common"})
DEFAULT_API_SCOPE = "access_as_user"  # what a delegated "{api_audience}/.default" grants
CODE_LIFETIME_S = 600
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
MAX_BODY_BYTES = 1 << 20
GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

# Graph permissions that let a token read /users/{id} (delegated scopes and application roles).
_USERS_READ_SCOPES = frozenset(
    {"User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.AccessAsUser.All"}
)
_USERS_READ_ROLES = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
_ME_SCOPES = frozenset({"User.Read", "User.ReadWrite", *_USERS_READ_SCOPES})
_GRAPH_USER_PROPERTIES = (
    "id",
    "displayName",
    "mail",
    "userPrincipalName",
    "companyName",
    "department",
    "jobTitle",
)
# What real Graph answers without $select (of the properties above).
_GRAPH_DEFAULT_PROPERTIES = ("id", "displayName", "mail", "userPrincipalName", "jobTitle")


@dataclass
class LocalUser:
    oid: str
    tid: str
    email: str | None
    name: str
    preferred_username: str | None = None  # defaults to email
    roles: list[str] = field(default_factory=list)
    xms_edov: bool | None = None  # included in tokens only when not None
    company_name: str | None = None
    department: str | None = None
    photo: bytes | None = None  # JPEG/PNG bytes served by Graph; None -> 404
    job_title: str | None = None
    account_enabled: bool = True  # False: the directory refuses its refresh tokens (AADSTS50057)

    def __post_init__(self) -> None:
        if self.preferred_username is None:
            self.preferred_username = self.email

    @property
    def user_principal_name(self) -> str:
        return self.preferred_username or self.email or f"{self.oid}@local.invalid"


@dataclass(frozen=True)
class AuthorizeResponse:
    """Where the sign-in page sends the browser back: a GET (query) or an auto-submitted POST (form_post)."""

    method: str
    redirect_uri: str
    params: dict[str, str]

    @property
    def url(self) -> str:
        return _add_query(self.redirect_uri, self.params)


@dataclass
class _SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    cert_der: bytes

    @classmethod
    def generate(cls) -> _SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local Entra ID token signing")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=5 * 365))
            .sign(key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        # Entra's kid is the signing certificate's x5t (SHA-1 thumbprint): unique per key.
        kid = _b64url(hashlib.sha1(der, usedforsecurity=False).digest())
        return cls(kid=kid, private_key=key, cert_der=der)

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(self.cert_der).decode()],
        }


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scopes: list[str]
    oid: str
    sid: str
    expires_at: float
    redeemed: bool = False


@dataclass
class _RefreshGrant:
    client_id: str
    oid: str
    scopes: list[str]
    sid: str
    revoked: bool = False


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _OAuthError(Exception):
    """An error of the token endpoint, rendered as Entra renders it."""

    def __init__(self, error: str, code: int, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.code = code
        self.description = description
        self.status = status


class _PageError(Exception):
    """An error the authorize endpoint shows in the browser (no redirect: the redirect URI is not trusted)."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class _GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# --- certificates -------------------------------------------------------------------------------------------


def ensure_certificates(cert_dir: Path, *, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """Return (ca.pem, server.pem, server-key.pem) in ``cert_dir``, creating what is missing.

    An existing CA is reused, so it needs to be trusted only once a year; it is
    replaced when it is about to expire or lacks the name constraints (made by an
    earlier version). The server certificate is reissued from it (``ca-key.pem``)
    when it is missing, about to expire, issued by another CA, or does not name ``host``.
    """
    if not all(_is_permitted(name) for name in _san_entries(host)):
        raise ValueError(f"the local Entra's CA vouches for localhost, 127.0.0.1 and ::1 only, not {host!r}")
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
                logger.warning("local Entra: replaced the test CA %s (%s); trust the new one", ca_path, ca_problem)
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        problem = _server_cert_problem(cert_path, key_path, ca_cert, host)
        if problem:
            if not ca_key_path.exists():
                if problem == "expires soon":
                    return ca_path, cert_path, key_path
                raise RuntimeError(f"{cert_path}: {problem}, and {ca_key_path} is missing to issue another")
            ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
            server_key = ec.generate_private_key(ec.SECP256R1())
            server_cert = _make_server_cert(server_key, ca_cert, ca_key, host)  # type: ignore[arg-type]
            _write_private_key(key_path, server_key)
            _write_atomic(cert_path, server_cert.public_bytes(serialization.Encoding.PEM))
            logger.info("local Entra: issued a server certificate in %s (%s)", cert_dir, problem)
    return ca_path, cert_path, key_path


def _make_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Local Entra ID (development only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Local Entra ID test CA {secrets.token_hex(4)}"),
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


def _make_server_cert(
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


# --- the server ---------------------------------------------------------------------------------------------


class LocalEntra:
    """Entra ID v2.0 and Graph on ``https://127.0.0.1:<port>``; see the module docstring."""

    def __init__(
        self,
        *,
        cert_dir: Path,
        users: list[LocalUser],
        tenant_id: str,
        client_id: str,
        client_secret: str,
        api_audience: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        redirect_uris: list[str] | None = None,
        api_token_version: int = 2,
        strict_tenants: bool = False,
    ) -> None:
        self.cert_dir = Path(cert_dir)
        # Keyed by oid; replacing an entry changes what the next token (refresh included) says.
        self.users: dict[str, LocalUser] = {user.oid: user for user in users}
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_audience = api_audience.rstrip("/") if api_audience else None
        self.host = host
        self.port = port
        # When set, the authorize endpoint refuses other redirect URIs (AADSTS50011), as a registration would.
        self.redirect_uris = list(redirect_uris) if redirect_uris is not None else None
        self.api_token_version = api_token_version
        # Entra signs in at a concrete tenant only that tenant's users (and guests, whose tokens then carry
        # that tenant's tid and their oid there). By default any user may sign in anywhere; strict_tenants
        # keeps a concrete tenant's page to its own users.
        self.strict_tenants = strict_tenants
        # Certificates registered for the app: a client may authenticate with a
        # signed assertion (private_key_jwt) instead of the secret.
        self.client_certificates: list[x509.Certificate] = []

        self.issued: list[str] = []
        self.jwks_requests = 0
        self.jwks_down = False
        self.next_authorize_error: tuple[str, str] | None = None
        self.token_requests: list[dict[str, str]] = []
        self.logout_requests: list[dict[str, str]] = []
        self.graph_requests: Counter[str] = Counter()
        self.request_log: list[tuple[str, str]] = []  # (method, path without query) of every request
        self.access_token_lifetime = 3600
        self.clock_offset = 0.0  # seconds added to the server's clock: lets tests age codes and tokens
        self.graph_strict_select = False
        # When set, every request's connection is closed unanswered, as during an outage.
        self.unreachable = False
        # When set, the token endpoint's id token is id_token_hook(claims) instead of the signed claims:
        # the real flow then delivers a forged token.
        self.id_token_hook: Callable[[dict[str, Any]], str] | None = None

        self._lock = threading.RLock()
        self._keys: list[_SigningKey] = []  # the current key last
        self._codes: dict[str, _AuthCode] = {}
        self._refresh_grants: dict[str, _RefreshGrant] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> LocalEntra:
        if self._httpd is not None:
            return self
        _, cert_path, key_path = ensure_certificates(self.cert_dir, host=self.host)
        with self._lock:
            if not self._keys:
                self._keys.append(_SigningKey.generate())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        httpd = _HTTPServer((self.host, self.port), _Handler, entra=self)
        # The handshake runs in the connection's thread (see _Handler.setup), so a client that
        # never finishes one cannot stall the accept loop.
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        # A short poll interval: stop() waits for the loop to notice, once per test.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="local-entra", daemon=True
        )
        self._thread.start()
        logger.info("local Entra listening on %s", self.url)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalEntra:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # addresses

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.cert_dir / "ca.pem"

    @property
    def graph_url(self) -> str:
        """Base URL of the local Graph (what ``https://graph.microsoft.com`` is in production)."""
        return self.url

    def authority(self, tenant: str | None = None) -> str:
        return f"{self.url}/{tenant or self.tenant_id}"

    def issuer(self, tid: str) -> str:
        return f"{self.url}/{tid}/v2.0"

    def issuer_v1(self, tid: str) -> str:
        # Entra's v1 issuer is its cloud's token service (sts.windows.net); a host that is
        # not Microsoft's names itself, which is what EntraConfig.v1_issuer expects of it.
        return f"{self.url}/{tid}/"

    def http_session(self) -> entra_http.PinnedSession:
        """A session of the project's HTTP chokepoint that trusts this server's CA."""
        return entra_http.session(ca_bundle=str(self.ca_path))

    # users and keys

    @property
    def tenants(self) -> set[str]:
        return {self.tenant_id, *(user.tid for user in self.users.values())}

    def add_user(self, user: LocalUser) -> LocalUser:
        self.users[user.oid] = user
        return user

    def find_user(self, key: str, *, tid: str | None = None) -> LocalUser | None:
        """The user whose oid, or user principal name, is ``key`` (case-insensitive)."""
        key = key.lower()
        for user in self.users.values():
            if tid is not None and user.tid != tid:
                continue
            if user.oid.lower() == key or user.user_principal_name.lower() == key:
                return user
        return None

    @property
    def current_kid(self) -> str:
        self._ensure_key()
        return self._keys[-1].kid

    @property
    def kids(self) -> list[str]:
        """The kids the JWKS lists, the current one last."""
        return [key.kid for key in self._keys]

    def rotate_keys(self, *, keep_old: bool = True) -> str:
        new = _SigningKey.generate()
        with self._lock:
            self._keys = [*self._keys, new] if keep_old else [new]
        return new.kid

    def jwks(self) -> dict[str, Any]:
        self._ensure_key()
        with self._lock:
            # Entra lists the current key first.
            return {"keys": [key.jwk() for key in reversed(self._keys)]}

    def public_key_pem(self, kid: str | None = None) -> bytes:
        """PEM of a signing key's public half (tests use it to forge an HS256 token with it as the secret)."""
        return (
            self._key(kid)
            .private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def revoke_refresh_tokens(self, user: LocalUser | None = None) -> int:
        """Revoke every refresh token (of ``user``); returns how many."""
        with self._lock:
            revoked = 0
            for grant in self._refresh_grants.values():
                if not grant.revoked and (user is None or grant.oid == user.oid):
                    grant.revoked = True
                    revoked += 1
            return revoked

    # tokens

    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = None,
        algorithm: str = "RS256",
        key: Any = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Sign any claims; by default with the current key, as the server signs its tokens.

        ``kid`` picks a key of the JWKS (an unknown kid still signs with the current key,
        and the header carries the unknown kid; ``kid=""`` leaves the header without one).
        ``key`` signs with another key: an RSA private key, or for HS256/384/512 the secret
        (bytes or str, a public key PEM included). ``algorithm="none"`` gives an unsigned token.
        """
        alg = algorithm
        if alg.lower() == "none":
            token = _compact({"alg": "none", "typ": "JWT", **(headers or {})}, claims, lambda _: b"")
        elif alg.upper().startswith("HS"):
            if key is None:
                raise ValueError(f"{alg} needs key= (the HMAC secret)")
            secret = key.encode() if isinstance(key, str) else bytes(key)
            digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg.upper()]
            header = {"alg": alg.upper(), "typ": "JWT", **({"kid": kid} if kid else {}), **(headers or {})}
            # By hand: PyJWT rightly refuses a PEM as an HMAC secret, and forging that is the point.
            token = _compact(header, claims, lambda data: hmac.new(secret, data, digest).digest())
        else:
            header_kid = self.current_kid if kid is None else kid
            if key is None:
                key = self._key(kid if kid in self.kids else None).private_key
            header = {"typ": "JWT", **({"kid": header_kid} if header_kid else {}), **(headers or {})}
            token = jwt.encode(claims, key, algorithm=alg, headers=header)
        with self._lock:
            self.issued.append(token)
        return token

    def id_token(
        self,
        user: LocalUser,
        *,
        nonce: str | None,
        audience: str | None = None,
        **overrides: Any,
    ) -> str:
        """An id token as the token endpoint issues it; ``overrides`` set claims (None removes one)."""
        return self.sign(self.id_token_claims(user, nonce=nonce, audience=audience, **overrides))

    def id_token_claims(
        self, user: LocalUser, *, nonce: str | None, audience: str | None = None, **overrides: Any
    ) -> dict[str, Any]:
        aud = audience or self.client_id
        claims: dict[str, Any] = {
            "aud": aud,
            "iss": self.issuer(user.tid),
            **self.time_claims(),
            "name": user.name,
            "nonce": nonce,
            "oid": user.oid,
            "preferred_username": user.preferred_username,
            "email": user.email,
            "roles": list(user.roles) or None,
            "sub": _pairwise_sub(user.oid, aud),
            "tid": user.tid,
            "uti": _b64url(secrets.token_bytes(16)),
            "ver": "2.0",
            "xms_edov": user.xms_edov,
        }
        return _apply(claims, overrides)

    def time_claims(self, lifetime: int = 3600) -> dict[str, int]:
        """iat, nbf and exp of a token issued now (by the server's clock) for ``lifetime`` seconds."""
        now = self._now()
        return {"iat": now, "nbf": now, "exp": now + lifetime}

    def access_token(
        self,
        user: LocalUser | None,
        *,
        audience: str,
        scp: str | None = None,
        roles: list[str] | None = None,
        version: int = 2,
        tid: str | None = None,
        **overrides: Any,
    ) -> str:
        """An access token for ``audience``: delegated for ``user``, app-only when ``user`` is None.

        ``overrides`` set claims (None removes one).
        """
        tid = tid or (user.tid if user else self.tenant_id)
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer_v1(tid) if version == 1 else self.issuer(tid),
            **self.time_claims(self.access_token_lifetime),
            "tid": tid,
            "uti": _b64url(secrets.token_bytes(16)),
            "ver": "1.0" if version == 1 else "2.0",
            "scp": scp or None,
            "roles": list(roles) if roles else None,
        }
        if version == 1:
            claims.update(appid=self.client_id, appidacr="1")
        else:
            claims.update(azp=self.client_id, azpacr="1")
        if user is not None:
            claims.update(
                idtyp="user",
                oid=user.oid,
                sub=_pairwise_sub(user.oid, audience),
                name=user.name,
                xms_edov=user.xms_edov,
            )
            if version == 1:
                claims.update(upn=user.preferred_username, unique_name=user.preferred_username)
            else:
                claims.update(preferred_username=user.preferred_username)
        else:
            app_oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"local-entra:{tid}:{self.client_id}"))
            claims.update(idtyp="app", oid=app_oid, sub=app_oid)
        return self.sign(_apply(claims, overrides))

    def verify_graph_token(self, token: str) -> dict[str, Any]:
        """The claims of a token Graph would accept: signed with a listed key, aud Graph, in its lifetime."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _GraphError(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.") from None
        if header.get("alg") != "RS256":
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        key = next((k for k in self._keys if k.kid == header.get("kid")), None)
        if key is None:
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        try:
            claims = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_APP_ID, GRAPH_RESOURCE, self.graph_url],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "require": ["exp", "tid"]},
            )
        except jwt.InvalidAudienceError:
            raise _GraphError(
                401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
            ) from None
        except jwt.InvalidTokenError:
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.") from None
        now = self._now()
        if not (claims.get("nbf", 0) <= now + 300 and now < claims["exp"]):
            raise _GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        tid = claims["tid"]
        if tid not in self.tenants or claims.get("iss") not in (self.issuer(tid), self.issuer_v1(tid)):
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer.")
        return claims

    # the browser, for tests

    def sign_in(
        self,
        auth_uri: str,
        user: LocalUser,
        *,
        session: Any = None,
    ) -> AuthorizeResponse:
        """Act as the browser: open ``auth_uri``, press ``user``'s button, return where it sends us back.

        Raises AssertionError with the page's text when the server shows an error page.
        """
        http = session or self.http_session()
        page = http.get(auth_uri, allow_redirects=False)
        if page.status_code in (301, 302, 303):
            return _authorize_response_from_location(page.headers["Location"])
        if page.status_code != 200:
            raise AssertionError(f"authorize answered {page.status_code}: {_text_of(page.text)}")

        form = _FormParser()
        form.feed(page.text)
        if user.oid not in form.buttons:
            raise AssertionError(f"the sign-in page offers no button for {user.oid}")
        answer = http.post(
            _absolute(auth_uri, form.action), data={**form.fields, "user": user.oid}, allow_redirects=False
        )
        if answer.status_code in (301, 302, 303):
            return _authorize_response_from_location(answer.headers["Location"])
        if answer.status_code == 200 and 'method="post"' in answer.text:
            form_post = _FormParser()
            form_post.feed(answer.text)
            return AuthorizeResponse("POST", form_post.action, dict(form_post.fields))
        raise AssertionError(f"sign-in answered {answer.status_code}: {_text_of(answer.text)}")

    # internals: state

    def _now(self) -> int:
        return int(time.time() + self.clock_offset)

    def _ensure_key(self) -> None:
        with self._lock:
            if not self._keys:
                self._keys.append(_SigningKey.generate())

    def _key(self, kid: str | None) -> _SigningKey:
        self._ensure_key()
        if kid is None:
            return self._keys[-1]
        for key in self._keys:
            if key.kid == kid:
                return key
        raise KeyError(kid)

    def _remember(self, value: str) -> str:
        with self._lock:
            self.issued.append(value)
        return value

    # internals: dispatch

    def _handle(self, method: str, target: str, headers: Any, body: bytes) -> _Response:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.request_log.append((method, path))
        segments = path.strip("/").split("/")
        try:
            if segments[:1] == ["v1.0"]:
                with self._lock:
                    self.graph_requests[path] += 1
                return self._graph(method, segments[1:], query, headers)
            return self._entra(method, segments, query, headers, body)
        except _OAuthError as error:
            return self._oauth_error(error)
        except _PageError as error:
            return _html(400, _error_page(error.code, error.description))
        except _GraphError as error:
            return self._graph_error(error)

    def _entra(self, method: str, segments: list[str], query: dict, headers: Any, body: bytes) -> _Response:
        if len(segments) < 2:
            return _not_found()
        tenant, rest = segments[0], "/".join(segments[1:])
        route = {
            ("GET", "v2.0/.well-known/openid-configuration"): self._discovery,
            ("GET", ".well-known/openid-configuration"): self._discovery_v1,
            ("GET", "discovery/v2.0/keys"): self._keys_endpoint,
            ("GET", "discovery/keys"): self._keys_endpoint,
            ("GET", "oauth2/v2.0/authorize"): self._authorize_get,
            ("POST", "oauth2/v2.0/authorize"): self._authorize_post,
            ("POST", "oauth2/v2.0/token"): self._token,
            ("GET", "oauth2/v2.0/logout"): self._logout,
        }.get((method, rest))
        if route is None:
            return _not_found()
        if tenant not in self.tenants and tenant not in TENANT_ALIASES:
            description = f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."
            if rest.startswith("oauth2/v2.0/authorize") or rest.endswith("logout"):
                raise _PageError(90002, description)
            raise _OAuthError("invalid_tenant", 90002, description)
        return route(tenant, query=query, headers=headers, body=body)

    # Entra endpoints

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.url}/{tenant}"
        issuer_tenant = "{tenantid}" if tenant in TENANT_ALIASES else tenant
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.url}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "msgraph_host": urlsplit(self.graph_url).netloc,
        }

    def _discovery(self, tenant: str, **_: Any) -> _Response:
        return _json(200, self.openid_configuration(tenant))

    def _discovery_v1(self, tenant: str, **_: Any) -> _Response:
        # v1 metadata: what a validator of v1 access tokens (issuer_v1, Entra's sts.windows.net) reads.
        base = f"{self.url}/{tenant}"
        issuer_tenant = "{tenantid}" if tenant in TENANT_ALIASES else tenant
        return _json(
            200,
            {
                "issuer": self.issuer_v1(issuer_tenant),
                "jwks_uri": f"{base}/discovery/keys",
                "authorization_endpoint": f"{base}/oauth2/authorize",
                "token_endpoint": f"{base}/oauth2/token",
                "id_token_signing_alg_values_supported": ["RS256"],
            },
        )

    def _keys_endpoint(self, tenant: str, **_: Any) -> _Response:
        with self._lock:
            self.jwks_requests += 1
            down = self.jwks_down
        if down:
            return _Response(503, b"Service Unavailable", "text/plain; charset=utf-8", {"Retry-After": "1"})
        return _json(200, self.jwks())

    def _validate_authorize(self, tenant: str, params: dict[str, str]) -> None:
        client_id = params.get("client_id")
        if not client_id:
            raise _PageError(900144, "The request body must contain the following parameter: 'client_id'.")
        if client_id != self.client_id:
            raise _PageError(
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise _PageError(900144, "The request body must contain the following parameter: 'redirect_uri'.")
        if self.redirect_uris is not None and redirect_uri not in self.redirect_uris:
            raise _PageError(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
                f"configured for the application '{client_id}'.",
            )
        if params.get("response_type") != "code":
            raise _PageError(
                900144, f"The response_type '{params.get('response_type', '')}' is not supported here: use 'code'."
            )
        if not params.get("code_challenge"):
            raise _PageError(
                900144, "The request must contain the following parameter: 'code_challenge' (PKCE is required)."
            )
        if params.get("code_challenge_method") != "S256":
            raise _PageError(
                900144, "The code_challenge_method must be 'S256' (PKCE with SHA-256; 'plain' is refused)."
            )
        if params.get("response_mode", "query") not in ("query", "form_post"):
            raise _PageError(900144, f"The response_mode '{params['response_mode']}' is not supported here.")

    def _authorize_get(self, tenant: str, *, query: dict, **_: Any) -> _Response:
        self._validate_authorize(tenant, query)
        early = self._early_authorize_error(query)
        if early is not None:
            return early
        users = self._signable_users(tenant)
        return _html(200, _sign_in_page(f"/{tenant}/oauth2/v2.0/authorize", query, users))

    def _authorize_post(self, tenant: str, *, body: bytes, **_: Any) -> _Response:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        oid = form.pop("user", "")
        self._validate_authorize(tenant, form)
        early = self._early_authorize_error(form)
        if early is not None:
            return early
        user = next((u for u in self._signable_users(tenant) if u.oid == oid), None)
        if user is None:
            raise _PageError(50020, f"User account '{oid}' does not exist in tenant '{tenant}'.")
        code = self._remember(secrets.token_urlsafe(48))
        sid = str(uuid.uuid4())
        with self._lock:
            self._codes[code] = _AuthCode(
                client_id=form["client_id"],
                redirect_uri=form["redirect_uri"],
                code_challenge=form["code_challenge"],
                nonce=form.get("nonce"),
                scopes=form.get("scope", "").split(),
                oid=user.oid,
                sid=sid,
                expires_at=self._now() + CODE_LIFETIME_S,
            )
        params = {"code": code}
        if "state" in form:
            params["state"] = form["state"]
        params["session_state"] = sid
        if form.get("client_info") == "1":
            params["client_info"] = _client_info(user)
        return _redirect_to_client(form["redirect_uri"], params, form.get("response_mode", "query"))

    def _early_authorize_error(self, params: dict[str, str]) -> _Response | None:
        with self._lock:
            error, self.next_authorize_error = self.next_authorize_error, None
        if error is None and params.get("prompt") == "none":
            error = ("login_required", "AADSTS50058: A silent sign-in request was sent but no user is signed in.")
        if error is None:
            return None
        answer = {"error": error[0], "error_description": error[1]}
        if "state" in params:
            answer["state"] = params["state"]
        return _redirect_to_client(params["redirect_uri"], answer, params.get("response_mode", "query"))

    def _signable_users(self, tenant: str) -> list[LocalUser]:
        if tenant in TENANT_ALIASES or not self.strict_tenants:
            return list(self.users.values())
        return [user for user in self.users.values() if user.tid == tenant]

    def _logout(self, tenant: str, *, query: dict, **_: Any) -> _Response:
        with self._lock:
            self.logout_requests.append({"tenant": tenant, **query})
        target = query.get("post_logout_redirect_uri", "")
        if target and urlsplit(target).scheme in ("http", "https"):
            if "state" in query:
                target = _add_query(target, {"state": query["state"]})
            link = f'<p><a id="post-logout" href="{html.escape(target)}">Back to the application</a></p>'
        else:
            link = "<p>You can close this window.</p>"
        return _html(200, _page("You have signed out", f"<h1>You have signed out of your account</h1>{link}"))

    # the token endpoint

    def _token(self, tenant: str, *, headers: Any, body: bytes, **_: Any) -> _Response:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            self.token_requests.append(dict(form))
        self._authenticate_client(form, headers.get("Authorization"))
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            answer = self._redeem_code(form)
        elif grant_type == "refresh_token":
            answer = self._redeem_refresh_token(form)
        elif grant_type == "client_credentials":
            answer = self._client_credentials(tenant, form)
        elif not grant_type:
            raise _OAuthError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."
            )
        else:
            raise _OAuthError(
                "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
            )
        return _json(200, answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _authenticate_client(self, form: dict[str, str], authorization: str | None) -> None:
        if form.get("client_assertion"):
            return self._authenticate_client_assertion(form)
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
                basic_id, _, basic_secret = decoded.partition(":")
            except ValueError:
                raise _OAuthError("invalid_client", 7000215, "Invalid client secret provided.", status=401) from None
            client_id = client_id or unquote_plus(basic_id)
            secret = secret or unquote_plus(basic_secret)
        if not client_id:
            raise _OAuthError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
            )
        if client_id != self.client_id:
            raise _OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if not secret:
            raise _OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                status=401,
            )
        if not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
            raise _OAuthError(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                f"value, not the client secret ID, for a secret added to app '{self.client_id}'.",
                status=401,
            )

    def _authenticate_client_assertion(self, form: dict[str, str]) -> None:
        """private_key_jwt: an RS256 or PS256 assertion signed with a registered certificate's key."""
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise _OAuthError("invalid_request", 90002, "client_assertion_type must be jwt-bearer.")
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise _OAuthError("invalid_client", 700025, "Client assertion is malformed.", status=401) from None
        for certificate in self.client_certificates:
            thumbprints = {
                "x5t#S256": base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA256())).rstrip(b"=").decode(),
                "x5t": base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA1())).rstrip(b"=").decode(),  # noqa: S303 (Entra's x5t is SHA-1)
            }
            if any(str(header.get(name, "")).rstrip("=") == value for name, value in thumbprints.items()):
                break
        else:
            raise _OAuthError(
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on application.",
                status=401,
            )
        try:
            claims = jwt.decode(
                assertion,
                certificate.public_key(),
                algorithms=["RS256", "PS256"],
                options={"require": ["exp", "iss", "sub", "aud"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise _OAuthError(
                "invalid_client", 700027, f"Client assertion failed signature validation: {exc}", status=401
            ) from None
        audience = claims["aud"]
        if not (
            isinstance(audience, str) and audience.startswith(self.url) and audience.endswith("/oauth2/v2.0/token")
        ):
            raise _OAuthError("invalid_client", 700024, "Client assertion audience claim does not match.", status=401)
        if claims["iss"] != self.client_id or claims["sub"] != self.client_id:
            raise _OAuthError(
                "unauthorized_client", 700016, "Client assertion is not for this application.", status=401
            )

    def _redeem_code(self, form: dict[str, str]) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise _OAuthError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'code'."
            )
        with self._lock:
            grant = self._codes.get(code)
            if grant is None:
                raise _OAuthError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
            if grant.redeemed:
                raise _OAuthError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
                    "existing refresh token.",
                )
            if self._now() >= grant.expires_at:
                raise _OAuthError(
                    "invalid_grant", 70008, "The provided authorization code or refresh token has expired."
                )
            if grant.client_id != form.get("client_id", self.client_id):
                raise _OAuthError("invalid_grant", 70000, "The code was issued to another client.")
            if grant.redirect_uri != form.get("redirect_uri"):
                raise _OAuthError(
                    "invalid_grant",
                    70000,
                    "The redirect_uri does not match the one of the authorization request.",
                )
            verifier = form.get("code_verifier")
            if not verifier:
                raise _OAuthError(
                    "invalid_grant", 501481, "The code_verifier is missing: the authorization request used PKCE."
                )
            challenge = _b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
            if not hmac.compare_digest(challenge, grant.code_challenge):
                raise _OAuthError(
                    "invalid_grant",
                    50148,
                    "The code_verifier does not match the code_challenge supplied in the authorization request "
                    "for PKCE.",
                )
            grant.redeemed = True
        scopes = form["scope"].split() if form.get("scope") else grant.scopes
        return self._user_tokens(
            self._granted_user(grant.oid),
            scopes=scopes,
            nonce=grant.nonce,
            sid=grant.sid,
            client_info=form.get("client_info") == "1",
            offline=("offline_access" in scopes or "offline_access" in grant.scopes),
            grant_scopes=sorted(set(grant.scopes) | set(scopes)),
        )

    def _redeem_refresh_token(self, form: dict[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token")
        if not token:
            raise _OAuthError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'."
            )
        with self._lock:
            grant = self._refresh_grants.get(token)
        if grant is None:
            raise _OAuthError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if grant.revoked:
            raise _OAuthError(
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
            )
        if grant.client_id != form.get("client_id", self.client_id):
            raise _OAuthError("invalid_grant", 70000, "The refresh token was issued to another client.")
        scopes = form["scope"].split() if form.get("scope") else grant.scopes
        return self._user_tokens(
            self._granted_user(grant.oid),
            scopes=scopes,
            nonce=None,
            sid=grant.sid,
            client_info=form.get("client_info") == "1",
            offline=True,
            grant_scopes=sorted(set(grant.scopes) | set(scopes)),
        )

    def _user_tokens(
        self,
        user: LocalUser,
        *,
        scopes: list[str],
        nonce: str | None,
        sid: str,
        client_info: bool,
        offline: bool,
        grant_scopes: list[str],
    ) -> dict[str, Any]:
        audience, granted, answer_scopes = self._resolve_scopes(scopes)
        if audience == GRAPH_APP_ID:
            # Graph's tokens are v1 whatever the endpoint, and carry the OIDC scopes too.
            oidc = [s for s in ("openid", "profile", "email") if s in scopes]
            access = self.access_token(user, audience=GRAPH_APP_ID, scp=" ".join([*oidc, *granted]), version=1)
        else:
            access = self.access_token(
                user,
                audience=audience,
                scp=" ".join(granted),
                roles=list(user.roles) or None,
                version=self.api_token_version,
            )
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join([*answer_scopes, *(s for s in ("openid", "profile", "email") if s in scopes)]),
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access,
        }
        if offline:
            refresh = self._remember(secrets.token_urlsafe(64))
            with self._lock:
                self._refresh_grants[refresh] = _RefreshGrant(
                    client_id=self.client_id, oid=user.oid, scopes=grant_scopes, sid=sid
                )
            answer["refresh_token"] = refresh
        if "openid" in scopes or "openid" in grant_scopes:
            claims = self.id_token_claims(user, nonce=nonce, sid=sid)
            hook = self.id_token_hook
            answer["id_token"] = self._remember(hook(claims)) if hook else self.sign(claims)
        if client_info:
            answer["client_info"] = _client_info(user)
        return answer

    def _client_credentials(self, tenant: str, form: dict[str, str]) -> dict[str, Any]:
        scope = form.get("scope", "").strip()
        if not scope.endswith("/.default") or " " in scope:
            raise _OAuthError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier (application ID URI).",
            )
        resource = scope.removesuffix("/.default")
        tid = self.tenant_id if tenant in TENANT_ALIASES else tenant
        if resource in self._graph_resources:
            access = self.access_token(None, audience=GRAPH_APP_ID, roles=["User.Read.All"], version=1, tid=tid)
        elif self.api_audience and resource == self.api_audience:
            access = self.access_token(None, audience=self.api_audience, version=self.api_token_version, tid=tid)
        else:
            raise _OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {tid}.",
            )
        return {
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access,
        }

    def _granted_user(self, oid: str) -> LocalUser:
        user = self.users.get(oid)
        if user is None:
            raise _OAuthError("invalid_grant", 50034, f"The user account {oid} does not exist in the directory.")
        if not user.account_enabled:
            raise _OAuthError("invalid_grant", 50057, "The user account is disabled.")
        return user

    @property
    def _graph_resources(self) -> tuple[str, ...]:
        return (GRAPH_RESOURCE, GRAPH_APP_ID, self.graph_url)

    def _resolve_scopes(self, scopes: list[str]) -> tuple[str, list[str], list[str]]:
        """(audience, scp values, scopes to answer) of the resource the requested scopes name."""
        by_resource: dict[str, tuple[list[str], list[str]]] = {}
        for scope in scopes:
            if scope in OIDC_SCOPES:
                continue
            audience, name = self._scope_resource(scope)
            granted, answered = by_resource.setdefault(audience, ([], []))
            if name == ".default":
                name = "User.Read" if audience == GRAPH_APP_ID else DEFAULT_API_SCOPE
                scope = name if audience == GRAPH_APP_ID else f"{audience}/{name}"
            granted.append(name)
            answered.append(scope)
        if len(by_resource) > 1:
            raise _OAuthError(
                "invalid_scope",
                28000,
                "Provided value for the input parameter scope is not valid because it contains more than one resource.",
            )
        if not by_resource:
            # User.Read is the permission every registration starts with, and Entra grants it with openid.
            return GRAPH_APP_ID, ["User.Read"], ["User.Read"]
        audience, (granted, answered) = next(iter(by_resource.items()))
        return audience, granted, answered

    def _scope_resource(self, scope: str) -> tuple[str, str]:
        if self.api_audience and scope.startswith(self.api_audience + "/"):
            return self.api_audience, scope[len(self.api_audience) + 1 :]
        for prefix in self._graph_resources:
            if scope.startswith(prefix + "/"):
                return GRAPH_APP_ID, scope[len(prefix) + 1 :]
        if "/" in scope or ":" in scope:
            raise _OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {scope.rsplit('/', 1)[0]} was not found in the tenant.",
            )
        return GRAPH_APP_ID, scope

    def _oauth_error(self, error: _OAuthError) -> _Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error.error,
            "error_description": f"AADSTS{error.code}: {error.description} Trace ID: {trace} "
            f"Correlation ID: {correlation} Timestamp: {stamp}",
            "error_codes": [error.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.url}/error?code={error.code}",
        }
        return _json(error.status, body, headers={"Cache-Control": "no-store"})

    # Graph

    def _graph(self, method: str, segments: list[str], query: dict, headers: Any) -> _Response:
        if method != "GET" or not segments:
            return self._graph_error(_GraphError(404, "Request_ResourceNotFound", "Resource not found."))
        authorization = headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        claims = self.verify_graph_token(token.strip())
        scp = set((claims.get("scp") or "").split())
        roles = set(claims.get("roles") or [])
        app_only = claims.get("idtyp") == "app" or not scp

        if segments[0] == "me":
            if app_only:
                raise _GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
            if not scp & _ME_SCOPES:
                raise _GraphError(
                    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
                )
            user = self.find_user(claims.get("oid", ""), tid=claims["tid"])
            rest = segments[1:]
            if user is None:
                raise _GraphError(404, "Request_ResourceNotFound", f"Resource '{claims.get('oid')}' does not exist.")
        elif segments[0] == "users" and len(segments) >= 2:
            user = self.find_user(segments[1], tid=claims["tid"])
            rest = segments[2:]
            allowed = (
                roles & (_USERS_READ_ROLES | {"ProfilePhoto.Read.All"})
                if app_only
                else scp & _USERS_READ_SCOPES or (user is not None and user.oid == claims.get("oid"))
            )
            if not allowed:
                raise _GraphError(
                    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
                )
            if user is None:
                raise _GraphError(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{segments[1]}' does not exist or one of its queried reference-property objects "
                    "are not present.",
                )
        else:
            raise _GraphError(400, "BadRequest", f"Resource not found for the segment '{segments[0]}'.")

        if not rest:
            return _json(200, self._graph_user(user, query.get("$select")), content_type=GRAPH_JSON)
        if rest == ["photo", "$value"]:
            return self._graph_photo(user, headers.get("If-None-Match"))
        raise _GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[0]}'.")

    def _graph_user(self, user: LocalUser, select: str | None) -> dict[str, Any]:
        values = {
            "id": user.oid,
            "displayName": user.name,
            "mail": user.email,
            "userPrincipalName": user.user_principal_name,
            "companyName": user.company_name,
            "department": user.department,
            "jobTitle": user.job_title,
        }
        if select:
            wanted = []
            for name in (part.strip() for part in select.split(",") if part.strip()):
                match = next((p for p in _GRAPH_USER_PROPERTIES if p.lower() == name.lower()), None)
                if match is None:
                    raise _GraphError(
                        400,
                        "Request_BadRequest",
                        f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
                    )
                wanted.append(match)
            context = f"{self.graph_url}/v1.0/$metadata#users({','.join(wanted)})/$entity"
        else:
            wanted = list(_GRAPH_DEFAULT_PROPERTIES if self.graph_strict_select else _GRAPH_USER_PROPERTIES)
            context = f"{self.graph_url}/v1.0/$metadata#users/$entity"
        return {"@odata.context": context, **{name: values[name] for name in wanted}}

    def _graph_photo(self, user: LocalUser, if_none_match: str | None) -> _Response:
        if not user.photo:
            raise _GraphError(404, "ImageNotFound", "The photo wasn't found.")
        etag = f'"{hashlib.sha256(user.photo).hexdigest()[:16]}"'
        if if_none_match:
            candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            if "*" in candidates or etag in candidates:
                return _Response(304, headers={"ETag": etag})
        return _Response(200, user.photo, _image_type(user.photo), headers={"ETag": etag})

    def _graph_error(self, error: _GraphError) -> _Response:
        body = {
            "error": {
                "code": error.code,
                "message": error.message,
                "innerError": {
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": str(uuid.uuid4()),
                    "client-request-id": str(uuid.uuid4()),
                },
            }
        }
        headers = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = (
                f'Bearer realm="", authorization_uri="{self.url}/common/oauth2/authorize", client_id="{GRAPH_APP_ID}"'
            )
        return _json(error.status, body, content_type=GRAPH_JSON, headers=headers)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, *, entra: LocalEntra) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.entra = entra
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can hang for seconds with no network.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def track(self, connection: socket.socket, *, opened: bool) -> None:
        with self._connections_lock:
            (self._connections.add if opened else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """Drop kept-alive connections, so a stopped server answers nobody."""
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # TLS handshakes refused by clients that do not trust the CA, resets: expected, never printed.
        logger.debug("local Entra: connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalEntra/1.0"
    sys_version = ""
    timeout = 30
    # Headers and body go out in separate writes: with Nagle's algorithm and delayed ACKs
    # each response would wait ~40 ms.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.request.do_handshake()
        self.server.track(self.request, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.request, opened=False)

    def log_message(self, format: str, *args: Any) -> None:
        # http.server would print request lines (authorization codes ride in query strings) to stderr.
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        if self.server.entra.unreachable:
            # As a network outage looks to the client: the connection closes without an answer.
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._write(_Response(413, b"Request body too large", "text/plain"))
            return
        body = self.rfile.read(length) if length else b""
        try:
            response = self.server.entra._handle(method, self.path, self.headers, body)
        except Exception:
            logger.exception("local Entra: %s %s failed", method, self.path.split("?", 1)[0])
            # Retry-After: 0 keeps msal from replaying this 500 to every redemption of the next 5 s: its
            # throttle cache keys token requests by client and scope only (not by code).
            response = _json(
                500,
                {"error": "server_error", "error_description": "local Entra failed; see its log"},
                headers={"Retry-After": "0"},
            )
        logger.debug("local Entra: %s %s -> %s", method, self.path.split("?", 1)[0], response.status)
        self._write(response)

    def _write(self, response: _Response) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        body = b"" if response.status == 304 else response.body
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# --- helpers ------------------------------------------------------------------------------------------------


class _FormParser(HTMLParser):
    """The hidden fields and the user buttons of a page's form."""

    action = ""
    fields: dict[str, str]
    buttons: list[str]

    def __init__(self) -> None:
        super().__init__()
        self.fields, self.buttons = {}, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name") == "user":
            self.buttons.append(a.get("value", ""))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _compact(header: dict[str, Any], claims: dict[str, Any], signer: Any) -> str:
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    return signing_input + "." + _b64url(signer(signing_input.encode("ascii")))


def _apply(claims: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**claims, **overrides}
    return {name: value for name, value in merged.items() if value is not None}


def _pairwise_sub(oid: str, audience: str) -> str:
    return _b64url(hashlib.sha256(f"{oid}|{audience}".encode()).digest())[:43]


def _client_info(user: LocalUser) -> str:
    return _b64url(json.dumps({"uid": user.oid, "utid": user.tid}, separators=(",", ":")).encode())


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    return "application/octet-stream"


def _add_query(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _absolute(base: str, reference: str) -> str:
    parts = urlsplit(base)
    return reference if "://" in reference else f"{parts.scheme}://{parts.netloc}{reference}"


def _authorize_response_from_location(location: str) -> AuthorizeResponse:
    parts = urlsplit(location)
    redirect_uri = location.split("?", 1)[0]
    return AuthorizeResponse("GET", redirect_uri, dict(parse_qsl(parts.query, keep_blank_values=True)))


def _text_of(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip()[:500]


def _json(
    status: int, body: Any, *, content_type: str = "application/json; charset=utf-8", headers: dict | None = None
) -> _Response:
    return _Response(status, json.dumps(body).encode(), content_type, dict(headers or {}))


def _html(status: int, page: str) -> _Response:
    return _Response(status, page.encode(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})


def _not_found() -> _Response:
    return _json(404, {"error": "not_found", "error_description": "Nothing here."})


def _redirect_to_client(redirect_uri: str, params: dict[str, str], response_mode: str) -> _Response:
    if response_mode == "form_post":
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
        )
        page = _page(
            "Working…",
            f'<form method="post" action="{html.escape(redirect_uri)}">{fields}'
            "<noscript><button type=submit>Continue</button></noscript></form>"
            "<script>document.forms[0].submit()</script>",
        )
        return _html(200, page)
    return _Response(302, headers={"Location": _add_query(redirect_uri, params), "Cache-Control": "no-store"})


def _page(title: str, content: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}"
        "main{max-width:440px;margin:8vh auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}"
        "button{display:block;width:100%;text-align:left;margin:8px 0;padding:12px;border:1px solid #ccc;"
        "background:#fff;cursor:pointer;font-size:15px}button:hover{background:#eef}"
        "small{color:#666}.note{color:#666;font-size:13px}</style></head>"
        f"<body><main>{content}</main></body></html>"
    )


def _sign_in_page(action: str, params: dict[str, str], users: list[LocalUser]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in params.items()
        if name != "user"
    )
    buttons = "".join(
        f'<button type="submit" name="user" value="{html.escape(user.oid)}">{html.escape(user.name)}<br>'
        f"<small>{html.escape(user.user_principal_name)}</small></button>"
        for user in users
    )
    if not users:
        buttons = "<p>No accounts in this tenant.</p>"
    return _page(
        "Sign in — local Entra ID",
        "<h1>Sign in — local Entra ID</h1><p>Pick an account</p>"
        f'<form method="post" action="{html.escape(action)}">{hidden}{buttons}</form>'
        '<p class="note">A local stand-in for Microsoft Entra ID: no password, for development and tests only.</p>',
    )


def _error_page(code: int, description: str) -> str:
    return _page(
        "Sign in — local Entra ID: error",
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f'<p id="error">AADSTS{code}: {html.escape(description)}</p>',
    )


def solid_png(rgb: tuple[int, int, int], size: int = 8) -> bytes:
    """A small single-colour PNG: a profile photo for local users."""
    row = b"\x00" + bytes(rgb) * size
    raw = zlib.compress(row * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
