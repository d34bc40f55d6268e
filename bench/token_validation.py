"""Bearer-token validation throughput with a warm key cache, on one core.

    .venv/bin/python bench/token_validation.py [--tokens 20000]

Signs distinct access tokens with an RSA key, puts its public key in the key
cache, then times ``validate_access_token`` (the same code path as /api/me:
header, key lookup, RS256 signature, audience, issuer, tenant, expiry, scope).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench")
TENANT = "7a3f0000-0000-4000-8000-00000000c0de"
CLIENT = "11111111-2222-3333-4444-555555555555"
os.environ.update(
    ENTRA_CLIENT_ID=CLIENT,
    ENTRA_TENANT_ID=TENANT,
    ENTRA_CLIENT_SECRET="bench",
    ENTRA_REDIRECT_URI="http://127.0.0.1:8000/auth/callback/",
)

import django

django.setup()

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.entra import keys
from accounts.entra.conf import entra_config
from accounts.entra.tokens import validate_access_token


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=20_000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True) | {"kid": "k1", "use": "sig"}
    config = entra_config()
    keys._cache = keys.KeyCache(
        jwks_uri=config.jwks_uri(), fetch=lambda url: {"keys": [jwk]}, ttl_s=3600, min_refresh_s=60
    )
    now = int(time.time())
    base = {
        "aud": f"api://{CLIENT}",
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "tid": TENANT,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "scp": "access_as_user",
        "ver": "2.0",
    }
    tokens = [
        jwt.encode({**base, "oid": str(uuid.uuid4()), "sub": str(uuid.uuid4())}, private, "RS256", {"kid": "k1"})
        for _ in range(args.tokens)
    ]
    validate_access_token(tokens[0], config=config)  # warm the cache
    started = time.perf_counter()
    for token in tokens:
        validate_access_token(token, config=config)
    elapsed = time.perf_counter() - started
    print(f"{args.tokens} tokens in {elapsed:.2f}s on one core: {args.tokens / elapsed:,.0f} tokens/s")


if __name__ == "__main__":
    main()
