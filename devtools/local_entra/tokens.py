"""The local Entra's signing keys and the tokens it signs: id tokens, access tokens, and forgeries for tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devtools.local_entra.users import LocalUser


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    cert_der: bytes

    @classmethod
    def generate(cls) -> SigningKey:
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
        kid = b64url(hashlib.sha1(der, usedforsecurity=False).digest())
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


class SigningKeys:
    """The keys the JWKS lists, the current one last. The first stays, for ``reset()`` to return to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first = SigningKey.generate()
        self._keys = [self._first]

    @property
    def current(self) -> SigningKey:
        with self._lock:
            return self._keys[-1]

    @property
    def all(self) -> list[SigningKey]:
        with self._lock:
            return list(self._keys)

    def find(self, kid: str | None) -> SigningKey | None:
        return next((key for key in self.all if key.kid == kid), None)

    def rotate(self, *, keep_old: bool = True) -> SigningKey:
        new = SigningKey.generate()
        with self._lock:
            self._keys = [*self._keys, new] if keep_old else [new]
        return new

    def reset(self) -> None:
        with self._lock:
            self._keys = [self._first]


class TokenIssuer:
    """Entra's tokens, signed with ``_signing_keys``. A mixin of LocalEntra, whose state it reads:"""

    url: str
    client_id: str
    tenant_id: str
    access_token_lifetime: int
    clock_offset: float
    issued: list[str]
    _signing_keys: SigningKeys
    _lock: threading.RLock

    def issuer(self, tid: str) -> str:
        return f"{self.url}/{tid}/v2.0"

    def issuer_v1(self, tid: str) -> str:
        # Entra's v1 issuer is its cloud's token service (sts.windows.net); a host that is
        # not Microsoft's names itself, which is what EntraConfig.v1_issuers expects of it.
        return f"{self.url}/{tid}/"

    # keys

    @property
    def current_kid(self) -> str:
        return self._signing_keys.current.kid

    @property
    def kids(self) -> list[str]:
        """The kids the JWKS lists, the current one last."""
        return [key.kid for key in self._signing_keys.all]

    def rotate_keys(self, *, keep_old: bool = True) -> str:
        return self._signing_keys.rotate(keep_old=keep_old).kid

    def jwks(self) -> dict[str, Any]:
        # Entra lists the current key first.
        return {"keys": [key.jwk() for key in reversed(self._signing_keys.all)]}

    def public_key_pem(self, kid: str | None = None) -> bytes:
        """PEM of a signing key's public half (tests use it to forge an HS256 token with it as the secret)."""
        key = self._signing_keys.current if kid is None else self._signing_keys.find(kid)
        if key is None:
            raise KeyError(kid)
        return key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

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
            signing_key = self._signing_keys.find(kid) or self._signing_keys.current
            header_kid = signing_key.kid if kid is None else kid
            header = {"typ": "JWT", **({"kid": header_kid} if header_kid else {}), **(headers or {})}
            token = jwt.encode(claims, signing_key.private_key if key is None else key, algorithm=alg, headers=header)
        return self._remember(token)

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
            "uti": b64url(secrets.token_bytes(16)),
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
            "uti": b64url(secrets.token_bytes(16)),
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

    def _now(self) -> int:
        return int(time.time() + self.clock_offset)

    def _remember(self, value: str) -> str:
        """Record a secret the server hands out (tests check none of them reaches a log)."""
        with self._lock:
            self.issued.append(value)
        return value


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode_client_info(user: LocalUser) -> str:
    """What Entra returns with ``client_info=1``: the user's ids, which msal keys its accounts by."""
    return b64url(json.dumps({"uid": user.oid, "utid": user.tid}, separators=(",", ":")).encode())


def _b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _compact(header: dict[str, Any], claims: dict[str, Any], signer: Callable[[bytes], bytes]) -> str:
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    return signing_input + "." + b64url(signer(signing_input.encode("ascii")))


def _apply(claims: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**claims, **overrides}
    return {name: value for name, value in merged.items() if value is not None}


def _pairwise_sub(oid: str, audience: str) -> str:
    return b64url(hashlib.sha256(f"{oid}|{audience}".encode()).digest())[:43]
