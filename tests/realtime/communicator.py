"""Channels' ``WebsocketCommunicator``, importable without daphne.

``channels.testing`` imports its live-server test case, which needs daphne; this project
serves with uvicorn and tests against a real uvicorn process instead. Only that import is
stood in for; the communicator is Channels' own.
"""

from __future__ import annotations

import importlib.util
import sys
import types

if importlib.util.find_spec("daphne") is None and "daphne.testing" not in sys.modules:
    stub = types.ModuleType("daphne.testing")
    stub.DaphneProcess = object  # only named by channels.testing.live, which these tests never use
    sys.modules.setdefault("daphne", types.ModuleType("daphne"))
    sys.modules["daphne.testing"] = stub

from channels.testing import WebsocketCommunicator

__all__ = ["WebsocketCommunicator"]
