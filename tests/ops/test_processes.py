"""Real processes: a uvicorn server writing JSON logs and multiprocess metrics through a sign-in, a renewal and a
WebSocket session; no line of its log holds a token, and /metrics there adds up what it counted."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.accounts.entra.conftest import ALICE, TENANT, entra_server  # noqa: F401
from tests.realtime.conftest import realtime_template  # noqa: F401
from tests.realtime.server import LiveDatabase, Server, cookie_of, sign_in


@pytest.fixture
def live_db(realtime_template, tmp_path):  # noqa: F811
    (tmp_path / "db").mkdir()
    db = LiveDatabase.clone(realtime_template, tmp_path / "db")
    db.execute(
        "INSERT INTO users (email, full_name, requires_entra_migration) VALUES (%s, %s, %s)",
        [ALICE.email.lower(), ALICE.name, True],
    )
    yield db
    db.drop()


def test_a_server_process_logs_json_without_tokens_and_exports_its_metrics(
    live_db,
    entra_server,  # noqa: F811
    tmp_path,
):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    server = Server(
        live_db,
        entra_server,
        tmp_path / "server.log",
        env={"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
             "METRICS_TOKEN": "scrape-me"},
    )  # fmt: skip
    issued_before = len(entra_server.issued)
    server.start()
    try:
        browser = sign_in(server, ALICE)  # links the flagged user
        live_db.execute("UPDATE users SET azure_token_expires_at = '2000-01-01T00:00:00Z'")
        assert browser.get(f"{server.url}/account/").status_code == 200  # renewed through the refresh token
        with connect(server.ws_url, origin=server.url, additional_headers=cookie_of(browser), open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "welcome"
        scraped = browser.get(f"{server.url}/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert scraped.status_code == 200
        refused = browser.get(f"{server.url}/metrics")
        assert refused.status_code == 403
    finally:
        server.stop()

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }
    assert samples[("entra_sign_ins_total", (("outcome", "linked"), ("reason", "")))] == 1
    assert samples[("entra_token_refresh_total", (("outcome", "renewed"),))] >= 1
    assert samples[("entra_migration_users", (("state", "linked"),))] == 1

    log = server.log()
    ours = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r["logger"] == "core.request" and r.get("path") == "/auth/callback/" for r in ours)
    assert any(r.get("outcome") == "linked" for r in ours)
    assert all(r["request_id"] for r in ours if r["logger"] == "core.request")
    issued = entra_server.issued[issued_before:]
    assert len(issued) >= 6  # the code, the tokens, the renewed ones
    for secret in issued:
        assert secret not in log
