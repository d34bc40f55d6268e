"""Settings, read once from the environment.

Every value comes from an environment variable through django-environ; the
defaults make a fresh checkout work on the embedded SQLite database. A value
that is present but malformed stops start-up with a message naming it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """A strict boolean: anything but a known spelling is an error, not False."""
    raw = env.str(name, default=None)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_secret(name: str, default: str | None = None) -> str | None:
    """A secret from NAME, or from the file that NAME_FILE points at."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from exc
    return env.str(name, default=default)


def env_seconds(name: str, default: int, *, minimum: int) -> int:
    raw = env.str(name, default=None)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number of seconds, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


_HEADER_NAME = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")
_HEADER_VALUE = re.compile(r"[A-Za-z0-9._~-]+")


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """Django's (META key, value) from the header as the proxy sends it: X-Forwarded-Proto, X-Forwarded-Ssl: on."""
    raw = env.str(name, default="").strip()
    if not raw:
        return None
    header, colon, value = raw.partition(":")
    header, value = header.strip(), value.strip() if colon else "https"
    if not _HEADER_NAME.fullmatch(header) or not _HEADER_VALUE.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name} must be a header name as the proxy sends it (X-Forwarded-Proto), "
            f"optionally with the value that means HTTPS (X-Forwarded-Ssl: on), not {raw!r}"
        )
    return f"HTTP_{header.upper().replace('-', '_')}", value


def env_origins(name: str) -> list[str]:
    origins = [origin.strip() for origin in env.list(name, default=[]) if origin.strip()]
    for origin in origins:
        parts = urlsplit(origin)
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            parts = parts._replace(netloc="")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
            raise ImproperlyConfigured(f"{name}: {origin!r} is not scheme://host (https://app.example.com)")
    return origins


DEBUG = env_bool("DEBUG", False)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Off DEBUG the site is HTTPS only. Behind a proxy that terminates TLS, name the header
# it sets (SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto): without it every request looks
# like plain HTTP, and SECURE_SSL_REDIRECT would redirect for ever.
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes and the scraper talk to the process itself, often in plain HTTP: not redirected.
SECURE_REDIRECT_EXEMPT = [r"^health/(live|ready)$", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS")
SECURE_HSTS_SECONDS = env_seconds("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Asking browsers to preload HSTS commits the whole registrable domain: the owner's
# decision (SECURE_HSTS_PRELOAD=true), not a default, so check --deploy is not asked.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Eight hours from the last request: core.middleware.SlidingSessionMiddleware saves
# an active session again (new expiry) at most once a minute.
SESSION_COOKIE_AGE = env_seconds("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)

try:
    DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
except (ImproperlyConfigured, ValueError, KeyError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from exc
_engine = DATABASES["default"].get("ENGINE", "")
if _engine == "django.db.backends.postgresql":
    # Same driver, with a schema editor that keeps migrations from blocking
    # writers (lock_timeout, retries, NOT VALID foreign keys).
    DATABASES["default"]["ENGINE"] = "core.db.backends.postgresql"
elif _engine == "django.db.backends.sqlite3":
    # Writers (web, workers) wait for each other instead of failing with "database is locked":
    # a transaction takes the write lock when it begins, and waits up to 20 s for it. WAL lets
    # readers go on while one writes, and with synchronous=NORMAL a commit does not wait for
    # the disk (a power cut may lose the last commits, never the file's consistency).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    raise ImproperlyConfigured(f"DATABASE_URL: only postgres:// and sqlite:// are supported, not {_engine}")

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        raise ImproperlyConfigured("SECRET_KEY is required with a PostgreSQL DATABASE_URL")
    # The embedded default works from a fresh checkout: a key made once for it.
    _key_file = BASE_DIR / "var" / "secret_key"
    if not _key_file.exists():
        import secrets

        _key_file.parent.mkdir(exist_ok=True)
        _key_file.touch(mode=0o600)
        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()

# Migration safety on PostgreSQL: how long a DDL statement may wait for a lock
# (a writer queued behind it waits as long), and how often migrate retries.
MIGRATION_LOCK_TIMEOUT_MS = env.int("MIGRATION_LOCK_TIMEOUT_MS", default=300)
MIGRATION_LOCK_RETRIES = env.int("MIGRATION_LOCK_RETRIES", default=8)
MIGRATION_ADVISORY_LOCK_WAIT_S = env.float("MIGRATION_ADVISORY_LOCK_WAIT_S", default=60.0)
if not 0 < MIGRATION_LOCK_TIMEOUT_MS < 1000:
    raise ImproperlyConfigured("MIGRATION_LOCK_TIMEOUT_MS must be between 1 and 999")

# Local stand-ins and seeders (devtools/): development, tests and benchmarks only.
DEVTOOLS = env_bool("DEVTOOLS", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # core before django_tasks_db: its db_worker (with the periodic jobs) wins.
    "core",
    "django_tasks_db",
    "accounts",
    "projects",
    "integrations",
    "realtime",
    "ops",
    *(["devtools"] if DEVTOOLS else []),
]

MIDDLEWARE = [
    # First: the request id covers everything below, and the request's log line its whole time.
    "core.request_log.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "core.middleware.SlidingSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.entra.middleware.EntraTokenRenewalMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.layout",
            ],
        },
    },
]

AUTH_USER_MODEL = "accounts.User"
# Nobody has a password: there is no password backend at all.
AUTHENTICATION_BACKENDS = ["accounts.backends.NoPasswordBackend"]
AUTH_PASSWORD_VALIDATORS: list[dict] = []

# Background work: django-tasks-db's database queue (run `manage.py db_worker`);
# TASKS_BACKEND=immediate runs tasks inline (the demo, the tests).
_TASK_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "immediate": "django.tasks.backends.immediate.ImmediateBackend",
}
_task_backend = env.str("TASKS_BACKEND", default="database")
if _task_backend not in _TASK_BACKENDS:
    raise ImproperlyConfigured(f"TASKS_BACKEND must be one of {', '.join(_TASK_BACKENDS)}, not {_task_backend!r}")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[_task_backend], "QUEUES": ["default"]}}

# The channel layer that carries real-time events between processes: in-memory (one
# process) by default; with REDIS_URL, Redis pub/sub (several processes and machines).
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, not {REDIS_URL!r}")
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A keyed hash, never the token: the key for token hashes (HMAC-SHA256).
TOKEN_HASH_KEY = env_secret("TOKEN_HASH_KEY") or SECRET_KEY

# One JSON object a line (LOG_FORMAT=json, the default off DEBUG) or plain text; every handler redacts
# tokens and adds the request id (core/logging.py). core.request writes one line per request (INFO).
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "core.logging.RedactFilter"},
        "context": {"()": "core.logging.ContextFilter"},
    },
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "text": {"()": "core.logging.TextFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["redact", "context"]}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
    # msal's and urllib3's debug output carries authorization codes and URLs:
    # never below WARNING, whatever LOG_LEVEL says.
    "loggers": {
        **{name: {"level": "WARNING"} for name in ("msal", "urllib3")},
        "core.request": {"level": env.str("REQUEST_LOG_LEVEL", default="INFO")},
        # The project's own request line replaces the server's access log.
        "django.server": {"level": "WARNING"},
        "uvicorn.access": {"level": "WARNING"},
    },
}

# --- Operations (ops/) ---------------------------------------------------------------
# /metrics answers a bearer METRICS_TOKEN or a client address in METRICS_ALLOWED_NETWORKS; 403 otherwise.
METRICS_TOKEN = env_secret("METRICS_TOKEN", default="") or ""
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
try:
    import ipaddress as _ipaddress

    for _net in METRICS_ALLOWED_NETWORKS:
        _ipaddress.ip_network(_net.strip(), strict=False)
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {exc}") from None
# The figures /metrics reads from the database are at most this old (read again in the background; 0: every scrape).
METRICS_DB_REFRESH_S = env.float("METRICS_DB_REFRESH_S", default=10.0)
# Prometheus multiprocess mode: the directory every process writes its values to (wiped before they start).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR: {PROMETHEUS_MULTIPROC_DIR} is not a directory")
# /health/ready fails when the oldest ready task has waited longer than this.
HEALTH_MAX_TASK_AGE_S = env_seconds("HEALTH_MAX_TASK_AGE_S", 300, minimum=1)
HEALTH_CHECK_TIMEOUT_S = env.float("HEALTH_CHECK_TIMEOUT_S", default=2.0)
# run_maintenance: how long finished task results and finished sync records are kept.
TASK_RESULT_RETENTION_DAYS = env.int("TASK_RESULT_RETENTION_DAYS", default=14)
SYNC_RECORD_RETENTION_DAYS = env.int("SYNC_RECORD_RETENTION_DAYS", default=90)
WEBSOCKET_SESSION_RETENTION_DAYS = env.int("WEBSOCKET_SESSION_RETENTION_DAYS", default=30)
for _name in ("TASK_RESULT_RETENTION_DAYS", "SYNC_RECORD_RETENTION_DAYS", "WEBSOCKET_SESSION_RETENTION_DAYS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1 (days)")

# --- Microsoft Entra ID --------------------------------------------------------
# Sign-in is configured when ENTRA_CLIENT_ID is set (or the local Entra is on);
# then every value it needs must be present and well-formed.
LOGIN_URL = "/auth/login/"
LOGIN_REDIRECT_URL = "/account/"

ENTRA_LOCAL = env_bool("ENTRA_LOCAL", False)
if ENTRA_LOCAL and not (DEBUG and DEVTOOLS):
    raise ImproperlyConfigured("ENTRA_LOCAL (the local stand-in for Entra) needs DEBUG=true and DEVTOOLS=true")
_local = ENTRA_LOCAL
ENTRA_LOCAL_PORT = env.int("ENTRA_LOCAL_PORT", default=8443)
ENTRA_LOCAL_DIR = BASE_DIR / "var" / "local-entra"

ENTRA_CLIENT_ID = env.str("ENTRA_CLIENT_ID", default="11111111-2222-3333-4444-555555555555" if _local else "")
ENTRA_ENABLED = bool(ENTRA_CLIENT_ID)
ENTRA_TENANT_ID = env.str("ENTRA_TENANT_ID", default="7a3f0000-0000-4000-8000-00000000c0de" if _local else "")
ENTRA_CLIENT_SECRET = env_secret("ENTRA_CLIENT_SECRET", default="local-entra-secret" if _local else "")
ENTRA_CLIENT_CERTIFICATE_FILE = env.str("ENTRA_CLIENT_CERTIFICATE_FILE", default="")
ENTRA_CLIENT_CERTIFICATE_THUMBPRINT = env.str("ENTRA_CLIENT_CERTIFICATE_THUMBPRINT", default="")
ENTRA_REDIRECT_URI = env.str("ENTRA_REDIRECT_URI", default="http://127.0.0.1:8000/auth/callback/" if _local else "")
ENTRA_AUTHORITY_HOST = env.str(
    "ENTRA_AUTHORITY_HOST",
    default=f"https://127.0.0.1:{ENTRA_LOCAL_PORT}" if _local else "https://login.microsoftonline.com",
).rstrip("/")
GRAPH_URL = env.str(
    "GRAPH_URL", default=f"https://127.0.0.1:{ENTRA_LOCAL_PORT}" if _local else "https://graph.microsoft.com"
).rstrip("/")
ENTRA_CA_BUNDLE = env.str("ENTRA_CA_BUNDLE", default=str(ENTRA_LOCAL_DIR / "ca.pem") if _local else "")
ENTRA_ALLOWED_TENANTS = env.list("ENTRA_ALLOWED_TENANTS", default=[ENTRA_TENANT_ID] if ENTRA_TENANT_ID else [])
ENTRA_API_AUDIENCE = env.str("ENTRA_API_AUDIENCE", default=f"api://{ENTRA_CLIENT_ID}" if ENTRA_CLIENT_ID else "")
# The delegated scope (scp) or app role (roles) an API caller must have.
ENTRA_API_SCOPE = env.str("ENTRA_API_SCOPE", default="access_as_user")
ENTRA_API_APP_ROLE = env.str("ENTRA_API_APP_ROLE", default="Api.Read")
# Which email domains each tenant owns: "tid=example.com|example.org;tid2=contoso.com".
ENTRA_TENANT_DOMAINS = {
    tid.strip(): [d.strip().lower() for d in domains.split("|") if d.strip()]
    for tid, _, domains in (
        part.partition("=") for part in env.str("ENTRA_TENANT_DOMAINS", default="").split(";") if part.strip()
    )
}
if _local and not ENTRA_TENANT_DOMAINS:
    ENTRA_TENANT_DOMAINS = {ENTRA_TENANT_ID: ["example.com"]}
ENTRA_JIT_CREATE = env_bool("ENTRA_JIT_CREATE", _local)
ENTRA_STAFF_ROLES = env.list("ENTRA_STAFF_ROLES", default=["Platform.Staff"])
ENTRA_SUPERUSER_ROLES = env.list("ENTRA_SUPERUSER_ROLES", default=["Platform.Admin"])
# Tenants whose roles count for staff/superuser (default: the home tenant only).
ENTRA_ADMIN_TENANTS = env.list("ENTRA_ADMIN_TENANTS", default=[])
# When set, the API accepts access tokens only from these client ids (azp/appid).
ENTRA_API_ALLOWED_CLIENTS = env.list("ENTRA_API_ALLOWED_CLIENTS", default=[])
# Sign-ins one client address may start a minute (each one writes a session).
ENTRA_LOGIN_FLOWS_PER_MINUTE = env.int("ENTRA_LOGIN_FLOWS_PER_MINUTE", default=30)
ENTRA_CLOCK_SKEW_S = env.int("ENTRA_CLOCK_SKEW_S", default=120)
ENTRA_KEYS_TTL_S = env.int("ENTRA_KEYS_TTL_S", default=24 * 3600)
ENTRA_KEYS_MIN_REFRESH_S = env.int("ENTRA_KEYS_MIN_REFRESH_S", default=60)
# Fernet key for the server-side msal token cache; derived from SECRET_KEY when unset.
ENTRA_TOKEN_CACHE_KEY = env_secret("ENTRA_TOKEN_CACHE_KEY", default="")

# accounts' AppConfig.ready() checks these values when ENTRA_ENABLED (settings import no app code).

# --- GitHub ----------------------------------------------------------------------
# Setting GITHUB_APP_ID turns the integration on; integrations' AppConfig.ready()
# then requires the App's values. GITHUB_LOCAL points everything at the local GitHub.
GITHUB_LOCAL = env_bool("GITHUB_LOCAL", False)
if GITHUB_LOCAL and not (DEBUG and DEVTOOLS):
    raise ImproperlyConfigured("GITHUB_LOCAL (the local stand-in for GitHub) needs DEBUG=true and DEVTOOLS=true")
GITHUB_LOCAL_PORT = env.int("GITHUB_LOCAL_PORT", default=8444)
GITHUB_LOCAL_DIR = BASE_DIR / "var" / "local-github"
_gh_local = f"http://127.0.0.1:{GITHUB_LOCAL_PORT}"
GITHUB_API_URL = env.str("GITHUB_API_URL", default=_gh_local if GITHUB_LOCAL else "https://api.github.com").rstrip("/")
GITHUB_WEB_URL = env.str("GITHUB_WEB_URL", default=_gh_local if GITHUB_LOCAL else "https://github.com").rstrip("/")
GITHUB_APP_ID = env.str("GITHUB_APP_ID", default="1" if GITHUB_LOCAL else "")
GITHUB_ENABLED = bool(GITHUB_APP_ID)
GITHUB_APP_PRIVATE_KEY_FILE = env.str(
    "GITHUB_APP_PRIVATE_KEY_FILE", default=str(GITHUB_LOCAL_DIR / "app-key.pem") if GITHUB_LOCAL else ""
)
GITHUB_APP_CLIENT_ID = env.str("GITHUB_APP_CLIENT_ID", default="Iv1.local" if GITHUB_LOCAL else "")
GITHUB_APP_CLIENT_SECRET = env_secret("GITHUB_APP_CLIENT_SECRET", default="local-github-secret" if GITHUB_LOCAL else "")
GITHUB_CA_BUNDLE = env.str("GITHUB_CA_BUNDLE", default="")
GITHUB_SYNC_MAX_ATTEMPTS = env.int("GITHUB_SYNC_MAX_ATTEMPTS", default=5)
GITHUB_SYNC_STALE_AFTER_S = env.int("GITHUB_SYNC_STALE_AFTER_S", default=900)
GITHUB_SYNC_RETRY_BASE_S = env.float("GITHUB_SYNC_RETRY_BASE_S", default=30.0)
GITHUB_SYNC_HEARTBEAT_S = env.float("GITHUB_SYNC_HEARTBEAT_S", default=30.0)
GITHUB_WRITES_PER_MINUTE = env.int("GITHUB_WRITES_PER_MINUTE", default=80)
GITHUB_WRITES_PER_HOUR = env.int("GITHUB_WRITES_PER_HOUR", default=500)
GITHUB_CONNECT_TIMEOUT_S = env.float("GITHUB_CONNECT_TIMEOUT_S", default=5.0)
GITHUB_READ_TIMEOUT_S = env.float("GITHUB_READ_TIMEOUT_S", default=30.0)
