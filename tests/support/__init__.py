"""Helpers for the tests, imported as modules: ``scratch`` (databases of their own), ``legacy``, ``admin``."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
