"""run_local_github: what a newcomer starts to try the sync without GitHub."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import jwt
import pytest

from core import http
from devtools.local_github import LocalGitHub
from integrations.github.conf import API_VERSION, load_private_key
from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp_path, port: int, key_file) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": "true",
        "DEVTOOLS": "true",
        "GITHUB_LOCAL": "true",
        "GITHUB_LOCAL_PORT": str(port),
        "GITHUB_APP_PRIVATE_KEY_FILE": str(key_file),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_local_github"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def installation(port: int, key) -> dict:
    now = int(time.time())
    token = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": "1"}, key, algorithm="RS256")
    headers = {"Authorization": f"Bearer {token}", "X-GitHub-Api-Version": API_VERSION}
    deadline = time.monotonic() + 10
    while True:
        try:
            with http.session() as session:
                return session.get(f"http://127.0.0.1:{port}/repos/demo/infrastructure/installation", headers=headers)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serves_the_demo_repository_with_the_key_it_writes(tmp_path, stop):
    port, key_file = free_port(), tmp_path / "local-github" / "app-key.pem"
    with start(tmp_path, port, key_file) as proc:
        try:
            line = proc.stdout.readline()
            assert f"Local GitHub on http://127.0.0.1:{port}" in line, line + proc.stderr.read()
            assert key_file.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
            answer = installation(port, load_private_key(str(key_file)))
            assert answer.status_code == 200, answer.text
        finally:
            proc.send_signal(stop)
            proc.wait(timeout=10)
        assert proc.returncode == 0, proc.stderr.read()


def test_keeps_a_key_that_is_there_already(tmp_path):
    port, key_file = free_port(), tmp_path / "app-key.pem"
    LocalGitHub().write_private_key(key_file)
    before = key_file.read_bytes()
    with start(tmp_path, port, key_file) as proc:
        try:
            assert "Local GitHub on" in proc.stdout.readline()
            assert installation(port, load_private_key(str(key_file))).status_code == 200
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert key_file.read_bytes() == before


def test_refuses_to_run_without_github_local(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DEBUG": "true",
           "DEVTOOLS": "true", "GITHUB_LOCAL": "false"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "run_local_github"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "only with DEBUG=true and GITHUB_LOCAL=true" in result.stderr
