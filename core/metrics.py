"""Every Prometheus metric family of the project, defined once, so any app can count without importing ops.

``ops.views.metrics`` exports them. With ``PROMETHEUS_MULTIPROC_DIR`` set (before the
process starts), prometheus-client keeps each process's values in that directory and
the scrape adds them up; a process that ends marks itself dead so its live gauges go.

Each labelled family is touched for every label value known here at import, so it is
exported zero-valued from the first scrape (in multiprocess mode nothing is exported
until a process touches it). Label values are copied in, not imported: core imports no app.
"""

from __future__ import annotations

import atexit
import os

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
# The *_created series double every counter's series for a figure Prometheus does not use.
disable_created_metrics()

# --- Entra sign-in ---------------------------------------------------------------
SIGN_IN_OUTCOMES = ("linked", "returning", "created", "refused")
# Refusals: accounts.models.RefusedEntraLink.Reason, then the flow's own (accounts.entra.signin.SignInError).
SIGN_IN_REFUSAL_REASONS = (
    "ambiguous_email",
    "linked_elsewhere",
    "inactive",
    "unverified_email",
    "no_account",
    "not_flagged",
    "state",
    "entra_error",
    "code",
    "id_token",
    "error",
)
entra_sign_ins = Counter("entra_sign_ins", "Entra sign-ins by outcome; refusals by reason", ["outcome", "reason"])
TOKEN_REFRESH_OUTCOMES = ("renewed", "refused", "unreachable", "no_account")
entra_token_refresh = Counter("entra_token_refresh", "Silent renewals of Entra tokens by outcome", ["outcome"])
entra_token_validation_seconds = Histogram(
    "entra_token_validation_seconds",
    "Time to validate an Entra token (ID or access token, signature and claims)",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, float("inf")),
)
ENTRA_API_STATUSES = ("200", "401", "403", "503")
entra_api_requests = Counter("entra_api_requests", "Bearer-token API requests (/api/me) by status", ["status"])

# --- GitHub sync -------------------------------------------------------------------
# integrations.models.GitHubSyncRecord.Status's final and retrying states.
GITHUB_SYNC_OUTCOMES = ("succeeded", "unchanged", "retrying", "failed")
github_syncs = Counter("github_syncs", "GitHub sync attempts by the record's status afterwards", ["outcome"])
github_sync_duration_seconds = Histogram(
    "github_sync_duration_seconds",
    "Duration of one GitHub sync attempt",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf")),
)
# integrations.github.client.GitHubError.reason values that are retried.
GITHUB_RETRY_REASONS = (
    "network",
    "timeout",
    "server_error",
    "rate_limited",
    "secondary_rate_limit",
    "not_fast_forward",
)
github_sync_retries = Counter("github_sync_retries", "GitHub sync attempts retried, by reason", ["reason"])
GITHUB_API_STATUSES = ("200", "201", "204", "304", "401", "403", "404", "409", "422", "429", "5xx", "error")
github_api_requests = Counter(
    "github_api_requests",
    "Requests to the GitHub API by status ('5xx' any server error, 'error' no answer)",
    ["status"],
)
github_rate_limit_remaining = Gauge(
    "github_rate_limit_remaining",
    "x-ratelimit-remaining of the last GitHub answer",
    multiprocess_mode="mostrecent",
)

# --- WebSockets (realtime/ counts them) ------------------------------------------------
websocket_connections = Gauge(
    "websocket_connections", "Open WebSocket connections of this process", multiprocess_mode="liveall"
)
websocket_connects = Counter("websocket_connects", "WebSocket connections accepted")
# realtime.models.WebSocketSession.Reason values.
WEBSOCKET_DISCONNECT_REASONS = (
    "client closed",
    "signed out",
    "token expired",
    "account disabled",
    "silent",
    "message too large",
    "server shutdown",
    "server lost",
    "stale",
)
websocket_disconnects = Counter("websocket_disconnects", "WebSocket connections closed, by reason", ["reason"])
websocket_heartbeats_missed = Counter(
    "websocket_heartbeats_missed", "Heartbeat intervals a client let pass without a frame"
)


def _touch_known_labels() -> None:
    for outcome in ("linked", "returning", "created"):
        entra_sign_ins.labels(outcome, "")
    for reason in SIGN_IN_REFUSAL_REASONS:
        entra_sign_ins.labels("refused", reason)
    for outcome in TOKEN_REFRESH_OUTCOMES:
        entra_token_refresh.labels(outcome)
    for status in ENTRA_API_STATUSES:
        entra_api_requests.labels(status)
    for outcome in GITHUB_SYNC_OUTCOMES:
        github_syncs.labels(outcome)
    for reason in GITHUB_RETRY_REASONS:
        github_sync_retries.labels(reason)
    for status in GITHUB_API_STATUSES:
        github_api_requests.labels(status)
    for reason in WEBSOCKET_DISCONNECT_REASONS:
        websocket_disconnects.labels(reason)


_touch_known_labels()


def github_status_label(status: int | None) -> str:
    if status is None:
        return "error"
    if status >= 500:
        return "5xx"
    return str(status)


def sign_in(outcome: str, reason: str = "") -> None:
    entra_sign_ins.labels(outcome, reason).inc()


if MULTIPROCESS:

    @atexit.register
    def _mark_dead() -> None:
        # Live gauges (websocket_connections) of this process stop counting once it ends.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
