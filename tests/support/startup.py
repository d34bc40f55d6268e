"""``manage.py`` in a process of its own, started in a fraction of the time.

Most of a ``manage.py`` start is the interpreter importing Django and the
libraries (psycopg, requests, cryptography, msal…), the same every time. One
helper process per session imports them once, with no settings; each run is a
``fork()`` of it that then starts as ``python manage.py ARGS`` does: it takes
its environment, working directory and arguments, reads the settings, loads
the apps and runs the command, its exit code and output its own.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.support import ROOT

# Imported once in the helper: libraries only, nothing that reads settings or defines models.
PRELOAD = [
    "asyncio",
    "concurrent.futures",
    "ssl",
    "psycopg",
    "psycopg.pq",
    "requests",
    "urllib3",
    "jwt",
    "msal",
    "tqdm",
    "sqlparse",
    "environ",
    "cryptography.x509",
    "cryptography.hazmat.primitives.serialization",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "asgiref.sync",
    "django.core.management",
    "django.core.management.base",
    "django.core.checks",
    "django.db.models",
    "django.db.migrations",
    "django.db.backends.base.schema",
    "django.db.backends.sqlite3.base",
    "django.db.backends.postgresql.base",
    "django.http",
    "django.urls",
    "django.forms",
    "django.template",
    "django.test.signals",
]

HELPER = r"""
import importlib, json, os, runpy, sys, traceback

os.environ.pop("DJANGO_SETTINGS_MODULE", None)
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:
        pass
import django.conf
assert not django.conf.settings.configured, "the helper must not read settings"
requests_in, replies = sys.stdin.buffer, sys.stdout.buffer
manage = sys.argv[2]
for line in requests_in:
    request = json.loads(line)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        # Now as `python manage.py ARGS` in a new process would be.
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0); os.dup2(out, 1); os.dup2(err, 2)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = 0
        try:
            if request["code"] is None:
                sys.argv = [manage, *request["args"]]
                sys.path[0] = os.path.dirname(manage)
                runpy.run_path(manage, run_name="__main__")
            else:  # as python -c CODE
                sys.argv = ["-c", *request["args"]]
                sys.path[0] = ""
                exec(compile(request["code"], "<string>", "exec"), {"__name__": "__main__"})
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        try:
            sys.stdout.flush(); sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(out); os.close(err)
    replies.write(json.dumps({"pid": pid}).encode() + b"\n"); replies.flush()
    _, status = os.waitpid(pid, 0)
    replies.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode() + b"\n"); replies.flush()
"""


def manage(*args: str, env: dict[str, str], cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python manage.py ARGS`` with this environment, in a new process; its exit code and output."""
    return _starter().run(list(args), env=env, cwd=cwd, timeout=timeout)


def python_c(code: str, *, env: dict[str, str], cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -c CODE`` with this environment, in a new process; its exit code and output."""
    return _starter().run([], code=code, env=env, cwd=cwd, timeout=timeout)


_lock = threading.Lock()
_started: Starter | None = None


def _starter() -> Starter:
    """The session's helper, started on first use."""
    global _started
    with _lock:
        if _started is None:
            _started = Starter(Path(tempfile.mkdtemp(prefix="manage-runs-")))
            atexit.register(_started.close)
        return _started


class Starter:
    """Runs ``manage.py ARGS`` to completion in a new process, forked from a helper that has the imports done."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory  # for the output of each run
        self._lock = threading.Lock()
        self._count = 0
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        self._helper = subprocess.Popen(
            [sys.executable, "-c", HELPER, json.dumps(PRELOAD), str(ROOT / "manage.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # replies are read line by line as they come, select() on the pipe itself
            cwd=ROOT,
            env=env,
        )

    def run(
        self, args: list[str], *, env: dict[str, str], cwd: Path = ROOT, timeout: float = 300, code: str | None = None
    ) -> subprocess.CompletedProcess:
        with self._lock:  # one run at a time: the helper answers in order
            self._count += 1
            out, err = self.directory / f"run-{self._count}.out", self.directory / f"run-{self._count}.err"
            request = {"args": args, "code": code, "env": env, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
            self._helper.stdin.write(json.dumps(request).encode() + b"\n")
            self._helper.stdin.flush()
            pid = json.loads(self._readline(timeout=30))["pid"]
            try:
                reply = self._readline(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                self._readline(timeout=30)
                raise subprocess.TimeoutExpired(["manage.py", *args], timeout) from None
            returncode = json.loads(reply)["status"]
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
        out.unlink()
        err.unlink()
        return subprocess.CompletedProcess(["manage.py", *args], returncode, stdout, stderr)

    def _readline(self, *, timeout: float) -> bytes:
        ready, _, _ = select.select([self._helper.stdout], [], [], timeout)
        if not ready:
            raise subprocess.TimeoutExpired("manage.py", timeout)
        line = self._helper.stdout.readline()
        if not line:
            raise RuntimeError(f"the start-up helper died (exit code {self._helper.poll()})")
        return line

    def close(self) -> None:
        self._helper.stdin.close()
        self._helper.wait(timeout=30)
        for leftover in self.directory.iterdir():
            leftover.unlink()
        self.directory.rmdir()
