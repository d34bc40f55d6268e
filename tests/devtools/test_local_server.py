"""The shared base of the local stand-ins: a subclass answers in _handle; the base serves, fails, drops and logs."""

from __future__ import annotations

import logging

import pytest
import requests

from devtools.local_server import MAX_BODY_BYTES, DropConnection, LocalServer, json_response


class Echo(LocalServer):
    name = "local echo"
    server_version = "LocalEcho/1.0"

    def _handle(self, method, target, headers, body):
        if target.startswith("/drop"):
            raise DropConnection
        if target.startswith("/boom"):
            raise RuntimeError("a bug in a stand-in")
        return json_response(200, {"method": method, "target": target, "body": body.decode(), "x": headers["X-Echo"]})


@pytest.fixture
def echo():
    with Echo(cert_dir=None) as server:
        yield server


def test_a_subclass_answers_over_plain_http_without_a_cert_dir(echo):
    answer = echo.http_session().post(f"{echo.url}/things?a=1", data=b"payload", headers={"X-Echo": "e"})

    assert echo.url.startswith("http://127.0.0.1:") and echo.ca_path is None
    assert answer.status_code == 200 and answer.headers["Server"] == "LocalEcho/1.0"
    assert answer.json() == {"method": "POST", "target": "/things?a=1", "body": "payload", "x": "e"}


def test_with_a_cert_dir_it_serves_https_with_a_certificate_of_the_test_ca(tmp_path):
    with Echo(cert_dir=tmp_path) as server:
        assert server.url.startswith("https://127.0.0.1:") and server.ca_path == tmp_path / "ca.pem"
        assert server.http_session().get(f"{server.url}/", headers={"X-Echo": "e"}).status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{server.url}/", verify=True, timeout=5)


def test_drop_connection_closes_that_connection_unanswered_and_no_other(echo):
    session = echo.http_session()

    with pytest.raises(requests.ConnectionError):
        session.get(f"{echo.url}/drop")
    assert session.get(f"{echo.url}/ok", headers={"X-Echo": "e"}).status_code == 200


def test_unreachable_closes_every_connection_until_reset(echo):
    session = echo.http_session()
    echo.unreachable = True
    with pytest.raises(requests.ConnectionError):
        session.get(f"{echo.url}/ok", headers={"X-Echo": "e"})

    echo.reset()

    assert echo.unreachable is False
    assert session.get(f"{echo.url}/ok", headers={"X-Echo": "e"}).status_code == 200


def test_a_failing_handle_is_a_500_logged_without_the_query_and_no_request_line_printed(echo, caplog, capfd):
    caplog.set_level(logging.DEBUG, logger="devtools")

    answer = echo.http_session().get(f"{echo.url}/boom?code=secret-code")

    assert (answer.status_code, answer.headers["Retry-After"]) == (500, "0")
    assert answer.json()["error_description"] == "local echo failed; see its log"
    messages = [record.getMessage() for record in caplog.records]
    assert "local echo: GET /boom failed" in messages and "local echo: GET /boom -> 500" in messages
    out, err = capfd.readouterr()
    assert "secret-code" not in "\n".join(messages) + out + err


def test_a_body_over_the_limit_is_refused_unread(echo):
    answer = echo.http_session().post(f"{echo.url}/", data=b"x" * (MAX_BODY_BYTES + 1))

    assert answer.status_code == 413


def test_a_subclass_sets_its_own_body_limit():
    class Small(Echo):
        max_body_bytes = 10

    with Small(cert_dir=None) as server:
        session = server.http_session()
        assert session.post(f"{server.url}/", data=b"x" * 10, headers={"X-Echo": "e"}).status_code == 200
        assert session.post(f"{server.url}/", data=b"x" * 11).status_code == 413
