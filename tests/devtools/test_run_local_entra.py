"""run_local_entra: what a newcomer starts to try sign-in without Microsoft."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from core import http
from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serves_discovery_over_https_with_its_test_ca(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": "true",
        "ENTRA_LOCAL": "true",
        "ENTRA_LOCAL_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_local_entra"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"Local Entra ID on https://127.0.0.1:{port}" in line, line + proc.stderr.read()
        ca = line.rsplit("CA: ", 1)[1].strip()
        tenant = "7a3f0000-0000-4000-8000-00000000c0de"
        deadline = time.monotonic() + 10
        while True:
            try:
                document = http.session(ca_bundle=ca).get(
                    f"https://127.0.0.1:{port}/{tenant}/v2.0/.well-known/openid-configuration"
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert document.json()["issuer"] == f"https://127.0.0.1:{port}/{tenant}/v2.0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_refuses_to_run_without_debug(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": "false",
        "SECRET_KEY": "x",
        "ENTRA_LOCAL": "false",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "run_local_entra"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "only with DEBUG=true and ENTRA_LOCAL=true" in result.stderr
