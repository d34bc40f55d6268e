"""CHANNEL_LAYERS from the environment: in-memory by default, Redis pub/sub with REDIS_URL (a real Redis)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def settings_in_subprocess(**env: str) -> str:
    code = "from django.conf import settings; import django; django.setup(); print(settings.CHANNEL_LAYERS['default']['BACKEND'])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip() or result.stderr.strip().splitlines()[-1]


def test_in_memory_by_default():
    assert settings_in_subprocess(REDIS_URL="") == "channels.layers.InMemoryChannelLayer"


def test_redis_url_selects_redis_pub_sub():
    assert settings_in_subprocess(REDIS_URL=REDIS_URL) == "channels_redis.pubsub.RedisPubSubChannelLayer"


def test_a_malformed_redis_url_stops_start_up():
    assert "REDIS_URL must be" in settings_in_subprocess(REDIS_URL="http://127.0.0.1:6379")


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up() and not os.environ.get("CI"), reason="needs Redis on 127.0.0.1:6379")
def test_a_group_message_crosses_layers_through_redis():
    """Two layer instances (as two processes would have) share a group through Redis."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    async def run() -> dict:
        sender, receiver = RedisPubSubChannelLayer(hosts=[REDIS_URL]), RedisPubSubChannelLayer(hosts=[REDIS_URL])
        group = f"test-{uuid.uuid4().hex}"
        try:
            channel = await receiver.new_channel()
            await receiver.group_add(group, channel)
            await sender.group_send(group, {"type": "notice", "text": "hello"})
            return await asyncio.wait_for(receiver.receive(channel), timeout=5)
        finally:
            await sender.flush()
            await receiver.flush()

    assert asyncio.run(run()) == {"type": "notice", "text": "hello"}
