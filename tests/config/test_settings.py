"""Start-up reads the environment once; a missing or malformed value stops it, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

ENTRA = {
    "ENTRA_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "ENTRA_TENANT_ID": "7a3f0000-0000-4000-8000-00000000c0de",
    "ENTRA_CLIENT_SECRET": "s",
    "ENTRA_REDIRECT_URI": "https://app.example.com/auth/callback/",
}


def check(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "DEBUG", "SECRET_KEY", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_fresh_checkout_starts_on_the_embedded_sqlite_database():
    result = check()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"}, "SECRET_KEY is required with a PostgreSQL"),
        ({"SECRET_KEY": "x", "DEBUG": "maybe"}, "DEBUG must be true or false, not 'maybe'"),
        ({"SECRET_KEY": "x", "DATABASE_URL": "mysql2://nowhere/db"}, "DATABASE_URL"),
        (
            {"SECRET_KEY": "x", "MIGRATION_LOCK_TIMEOUT_MS": "5000"},
            "MIGRATION_LOCK_TIMEOUT_MS must be between 1 and 999",
        ),
        ({"SECRET_KEY": "x", "TASKS_BACKEND": "celery"}, "TASKS_BACKEND must be one of database, immediate"),
        ({"SECRET_KEY": "x", "ENTRA_LOCAL": "true"}, "ENTRA_LOCAL (the local stand-in for Entra) needs DEBUG=true"),
        ({"SECRET_KEY": "x", **ENTRA, "ENTRA_TENANT_ID": ""}, "ENTRA_TENANT_ID is required"),
        ({"SECRET_KEY": "x", **ENTRA, "ENTRA_CLIENT_ID": "my-app"}, "ENTRA_CLIENT_ID must be a GUID"),
        (
            {"SECRET_KEY": "x", **ENTRA, "ENTRA_CLIENT_SECRET": ""},
            "ENTRA_CLIENT_SECRET (or ENTRA_CLIENT_CERTIFICATE_FILE) is required",
        ),
        (
            {"SECRET_KEY": "x", **ENTRA, "ENTRA_REDIRECT_URI": "/auth/callback/"},
            "ENTRA_REDIRECT_URI must be an absolute",
        ),
        (
            {"SECRET_KEY": "x", **ENTRA, "ENTRA_REDIRECT_URI": "http://app.example.com/auth/callback/"},
            "ENTRA_REDIRECT_URI must be https:// (http:// only on localhost, 127.0.0.1 or ::1)",
        ),
        (
            {"SECRET_KEY": "x", **ENTRA, "ENTRA_REDIRECT_URI": "http://localhost.example.com/auth/callback/"},
            "ENTRA_REDIRECT_URI must be https://",
        ),
        (
            {"SECRET_KEY": "x", **ENTRA, "ENTRA_AUTHORITY_HOST": "http://login.example"},
            "ENTRA_AUTHORITY_HOST must be an https:// URL",
        ),
        (
            {"SECRET_KEY": "x", **ENTRA, "ENTRA_ALLOWED_TENANTS": "contoso"},
            "ENTRA_ALLOWED_TENANTS must list tenant GUIDs",
        ),
        ({"SECRET_KEY": "x", **ENTRA, "ENTRA_CA_BUNDLE": "/nonexistent/ca.pem"}, "ENTRA_CA_BUNDLE: no such file"),
        ({"SECRET_KEY": "x", **ENTRA, "ENTRA_TOKEN_CACHE_KEY": "short"}, "ENTRA_TOKEN_CACHE_KEY must be a Fernet key"),
        (
            {"SECRET_KEY": "x", **ENTRA, "ENTRA_CLIENT_CERTIFICATE_FILE": str(ROOT / "README.md")},
            "ENTRA_CLIENT_CERTIFICATE_FILE must be a PEM file with the private key and the certificate",
        ),
    ],
)
def test_bad_configuration_stops_start_up_naming_the_variable(env, message):
    result = check(**env)
    assert result.returncode == 1
    assert message in result.stderr


def test_entra_configured_from_the_environment_starts():
    assert check(SECRET_KEY="x", **ENTRA).returncode == 0


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000"])
def test_a_plain_http_redirect_uri_is_accepted_on_loopback_only(host):
    result = check(**{"SECRET_KEY": "x", **ENTRA, "ENTRA_REDIRECT_URI": f"http://{host}/auth/callback/"})
    assert result.returncode == 0, result.stderr


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    assert check(SECRET_KEY_FILE=str(secret)).returncode == 0
    result = check(SECRET_KEY_FILE=str(tmp_path / "missing"))
    assert result.returncode == 1 and "SECRET_KEY_FILE: cannot read" in result.stderr
