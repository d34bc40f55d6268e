"""Start-up reads the environment once; a missing or malformed value stops it, naming the variable."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess

import pytest

from tests.support import ROOT, startup

ENTRA = {
    "ENTRA_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "ENTRA_TENANT_ID": "7a3f0000-0000-4000-8000-00000000c0de",
    "ENTRA_CLIENT_SECRET": "s",
    "ENTRA_REDIRECT_URI": "https://app.example.com/auth/callback/",
}


# What start-up reads, so that the test run's own environment does not leak in.
OURS = ("ENTRA_", "DEBUG", "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "SECURE_", "SESSION_", "CSRF_")
DEPLOY_WARNINGS = ("security.W004", "security.W008", "security.W012", "security.W016")


def check(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``manage.py check ARGS`` in a process of its own, started with this environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    return startup.manage("check", *args, env={**base, **env}, timeout=60)


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


def production_example() -> dict[str, str]:
    """The runbook's ``export`` line from the README, with a real secret in place of the ellipsis."""
    readme = (ROOT / "README.md").read_text()
    line = re.search(r"^export (DATABASE_URL=.*?[^\\])$", readme, re.MULTILINE | re.DOTALL).group(1)
    env = dict(word.split("=", 1) for word in shlex.split(line.replace("\\\n", " ")))
    assert env["SECRET_KEY"] == "…"
    return {**env, "SECRET_KEY": secrets.token_urlsafe(50)}


def settings_of(**env: str) -> dict:
    """The transport settings that start-up makes of this environment."""
    names = [
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_PROXY_SSL_HEADER",
        "CSRF_TRUSTED_ORIGINS",
        "SESSION_COOKIE_AGE",
    ]
    code = f"from django.conf import settings; import json; print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    base = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    result = startup.python_c(code, env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env}, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("entra", [{}, ENTRA], ids=["without-entra", "with-entra"])
def test_the_readme_production_example_passes_the_deployment_checks(entra):
    # Checks only: nothing connects to the example's database (db.internal does not exist here).
    result = check("--deploy", "--fail-level", "WARNING", **production_example(), **entra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_off_debug_transport_security_is_on_by_default():
    result = check("--deploy", **production_example())
    for warning in DEPLOY_WARNINGS:
        assert warning not in result.stdout + result.stderr
    assert settings_of(SECRET_KEY="x") == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_PROXY_SSL_HEADER": None,
        "CSRF_TRUSTED_ORIGINS": [],
        "SESSION_COOKIE_AGE": 8 * 3600,
    }


def test_debug_runs_on_plain_http():
    values = settings_of(DEBUG="true")
    assert not values["SESSION_COOKIE_SECURE"] and not values["CSRF_COOKIE_SECURE"]
    assert not values["SECURE_SSL_REDIRECT"] and values["SECURE_HSTS_SECONDS"] == 0


def test_switching_transport_security_off_is_what_check_deploy_reports():
    off = {
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
    }
    result = check("--deploy", **production_example(), **off)
    for warning in DEPLOY_WARNINGS:
        assert warning in result.stderr


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("X-Forwarded-Proto", ["HTTP_X_FORWARDED_PROTO", "https"]),
        ("x-forwarded-proto", ["HTTP_X_FORWARDED_PROTO", "https"]),
        ("X-Forwarded-Ssl: on", ["HTTP_X_FORWARDED_SSL", "on"]),
    ],
)
def test_the_proxy_ssl_header_is_named_as_the_proxy_sends_it(header, expected):
    assert settings_of(SECRET_KEY="x", SECURE_PROXY_SSL_HEADER=header)["SECURE_PROXY_SSL_HEADER"] == expected


def test_transport_settings_come_from_the_environment():
    values = settings_of(
        SECRET_KEY="x",
        CSRF_TRUSTED_ORIGINS="https://app.example.com, https://*.example.org,http://localhost:8000",
        SESSION_COOKIE_AGE="3600",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="600",
    )
    assert values["CSRF_TRUSTED_ORIGINS"] == [
        "https://app.example.com",
        "https://*.example.org",
        "http://localhost:8000",
    ]
    assert (values["SESSION_COOKIE_AGE"], values["SECURE_SSL_REDIRECT"], values["SECURE_HSTS_SECONDS"]) == (
        3600,
        False,
        600,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"}, "SECURE_PROXY_SSL_HEADER must be a header name"),
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: "}, "SECURE_PROXY_SSL_HEADER must be a header name"),
        ({"SECURE_PROXY_SSL_HEADER": "X Forwarded Proto"}, "SECURE_PROXY_SSL_HEADER must be a header name"),
        ({"CSRF_TRUSTED_ORIGINS": "app.example.com"}, "CSRF_TRUSTED_ORIGINS: 'app.example.com' is not scheme://host"),
        ({"CSRF_TRUSTED_ORIGINS": "https://app.example.com/"}, "CSRF_TRUSTED_ORIGINS: 'https://app.example.com/'"),
        ({"CSRF_TRUSTED_ORIGINS": "ftp://app.example.com"}, "CSRF_TRUSTED_ORIGINS: 'ftp://app.example.com'"),
        ({"SESSION_COOKIE_AGE": "8h"}, "SESSION_COOKIE_AGE must be a whole number of seconds"),
        ({"SESSION_COOKIE_AGE": "0"}, "SESSION_COOKIE_AGE must be at least 60"),
        ({"SECURE_HSTS_SECONDS": "-1"}, "SECURE_HSTS_SECONDS must be at least 0"),
        ({"SECURE_SSL_REDIRECT": "sometimes"}, "SECURE_SSL_REDIRECT must be true or false"),
    ],
)
def test_malformed_transport_settings_stop_start_up_naming_the_variable(env, message):
    result = check(SECRET_KEY="x", **env)
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


def test_the_embedded_database_is_in_wal_mode_with_commits_that_do_not_wait_for_the_disk(tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    code = (
        "from django.db import connection; c = connection.cursor(); "
        "print(c.execute('PRAGMA journal_mode').fetchone()[0], c.execute('PRAGMA synchronous').fetchone()[0])"
    )
    result = startup.manage(
        "shell", "--no-imports", "-c", code, env={**base, "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "1"]  # synchronous=NORMAL is 1 (FULL, the default, is 2)
