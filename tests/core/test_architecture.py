"""Imports run one way: core imports no app; accounts and projects never import integrations or realtime;
no app imports ops."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("core", "accounts", "projects", "integrations", "realtime", "ops", "devtools", "config")
# What each package may import of the project's own packages.
ALLOWED = {
    "core": set(),
    "accounts": {"core"},
    "projects": {"core", "accounts"},
    "integrations": {"core", "accounts", "projects"},
    "realtime": {"core", "accounts", "projects", "integrations"},
    # Operations read every app's tables (figures, maintenance); no app imports ops (metrics live in core).
    "ops": {"core", "accounts", "projects", "integrations", "realtime"},
}


def imported_packages(package: str) -> dict[str, set[str]]:
    """{top-level project package: {modules importing it}} for every module of ``package``."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in APPS and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", list(ALLOWED))
def test_imports_run_one_way(package):
    wrong = {top: sorted(where) for top, where in imported_packages(package).items() if top not in ALLOWED[package]}
    assert wrong == {}


def test_no_product_code_imports_devtools():
    for package in ALLOWED:
        assert "devtools" not in imported_packages(package), package


def test_the_settings_import_no_app_code():
    code = (
        "import sys, config.settings; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {APPS!r} and not m.startswith('config')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_production_does_not_offer_the_dev_tools():
    env = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "x", "DEVTOOLS": "false", "DATABASE_URL": "sqlite:///:memory:"}
    result = subprocess.run(
        [sys.executable, "manage.py", "help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "migrate_users_to_entra" in result.stdout
    assert "run_local_entra" not in result.stdout and "seed_legacy_data" not in result.stdout
