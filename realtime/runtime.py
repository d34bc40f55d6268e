"""One per server process (per event loop): the live connections and everything done for all of them at once.

The consumers stay thin and never touch the database per message. The runtime keeps,
in memory, which connections beat, and on timers of its own:

- writes the heartbeats of an interval in one UPDATE (``REALTIME_HEARTBEAT_WRITE_S``);
- closes connections silent for three heartbeat intervals (4408);
- re-checks every connection's credentials in two queries (``REALTIME_RECHECK_S``);
- beats in the server registry and sweeps dead servers (``REALTIME_SERVER_BEAT_S``);
- inserts the rows of new connections and settles closed ones in batches.

Database work runs in a small pool of threads of its own (``REALTIME_DB_THREADS``), each
with its own connection: not Channels' ``database_sync_to_async``, which funnels every
ORM call of a process through one thread. On shutdown (SIGTERM under uvicorn, see
``realtime.lifespan``) every connection is closed with 1001 and its row settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, connections

from core import metrics
from realtime import servers, sessions
from realtime.auth import recheck
from realtime.conf import RealtimeConfig, realtime_config
from realtime.models import WebSocketSession

if TYPE_CHECKING:
    from realtime.consumers import NotificationConsumer

logger = logging.getLogger("realtime")
GOING_AWAY = 1001

_runtimes: dict[asyncio.AbstractEventLoop, Runtime] = {}


def _in_db_thread(fn: Callable, args: tuple, kwargs: dict) -> Any:
    try:
        return fn(*args, **kwargs)
    except DatabaseError:
        # The next call in this thread reconnects rather than reuse a broken connection.
        connections["default"].close()
        raise


class Runtime:
    def __init__(self, config: RealtimeConfig | None = None) -> None:
        self.config = config or realtime_config()
        self.server_id = servers.new_server_id()
        self.connections: dict[str, NotificationConsumer] = {}
        self.beaten: set[str] = set()
        self.stopping = False
        self.heartbeat_writes = 0  # UPDATE statements written for heartbeats
        self.max_lag_s = 0.0  # the longest the event loop was blocked
        self._executor = ThreadPoolExecutor(max_workers=self.config.db_threads, thread_name_prefix="realtime-db")
        self._opens: list[tuple[dict, asyncio.Future]] = []
        self._closes: list[sessions.Closure] = []
        self._closes_in_flight = False
        self._wakeup_opens = asyncio.Event()
        self._wakeup_closes = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._started: asyncio.Future | None = None

    # --- life --------------------------------------------------------------------
    @classmethod
    async def ensure(cls) -> Runtime:
        """The running loop's runtime, registered and started (the first connection or lifespan starts it)."""
        loop = asyncio.get_running_loop()
        runtime = _runtimes.get(loop)
        if runtime is None:
            runtime = _runtimes[loop] = cls()
        await runtime.start()
        return runtime

    @classmethod
    def current(cls) -> Runtime | None:
        try:
            return _runtimes.get(asyncio.get_running_loop())
        except RuntimeError:
            return None

    async def start(self) -> None:
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                await self.db(servers.register, self.server_id)
            except BaseException as exc:
                self._started.set_exception(exc)
                self._started = None
                raise
            for loop in (self._open_writer, self._close_writer, self._silence_loop, self._heartbeat_loop):
                self._tasks.append(asyncio.create_task(loop()))
            self._tasks.append(asyncio.create_task(self._server_loop()))
            self._tasks.append(asyncio.create_task(self._lag_monitor()))
            self._tasks.append(asyncio.create_task(self._recheck_loop()))
            self._started.set_result(None)
            logger.info("real-time server %s started", self.server_id)
        await self._started

    async def shutdown(self, *, code: int = GOING_AWAY) -> None:
        """Close every connection with ``code``, settle the rows, leave the registry, stop the threads."""
        if self.stopping:
            return
        self.stopping = True
        live = list(self.connections.values())
        for consumer in live:
            await consumer.close_with(code, WebSocketSession.Reason.SHUTDOWN, settle=False)
        while self._closes_in_flight:  # a batch being written is let finish, not cancelled
            await asyncio.sleep(0.01)
        closures = self._closes + [
            sessions.Closure(c.connection_id, WebSocketSession.Reason.SHUTDOWN, code) for c in live
        ]
        self._closes = []
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for _, future in self._opens:
            if not future.done():
                future.set_exception(RuntimeError("the real-time server is shutting down"))
        self._opens = []
        try:
            await self.db(sessions.settle_sessions, closures)
            await self.db(servers.stop, self.server_id)
        finally:
            await self._close_db_threads()
            _runtimes.pop(asyncio.get_running_loop(), None)
        logger.info("real-time server %s stopped: %d connections closed", self.server_id, len(live))

    async def _close_db_threads(self) -> None:
        """Each database thread closes its own connection (a connection belongs to its thread)."""
        n = self.config.db_threads
        barrier = threading.Barrier(n, timeout=5)

        def close() -> None:
            connections.close_all()
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()

        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, close) for _ in range(n)))
        self._executor.shutdown(wait=False)

    async def db(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, _in_db_thread, fn, args, kwargs)

    # --- connections ----------------------------------------------------------------
    async def open_session(self, row: dict) -> None:
        """Insert the connection's row (batched with the others arriving now); returns once it is stored."""
        future = asyncio.get_running_loop().create_future()
        self._opens.append((row, future))
        self._wakeup_opens.set()
        await future

    def add(self, consumer: NotificationConsumer) -> None:
        self.connections[consumer.connection_id] = consumer
        metrics.websocket_connects.inc()
        metrics.websocket_connections.inc()

    def forget(self, consumer: NotificationConsumer, *, reason: str) -> None:
        if self.connections.pop(consumer.connection_id, None) is not None:
            metrics.websocket_connections.dec()
            metrics.websocket_disconnects.labels(reason).inc()
        self.beaten.discard(consumer.connection_id)

    def settle(self, consumer: NotificationConsumer, *, reason: str, code: int | None) -> None:
        """The connection is closed: forget it, and settle its row with the next batch."""
        self.forget(consumer, reason=reason)
        self._closes.append(sessions.Closure(consumer.connection_id, reason, code))
        self._wakeup_closes.set()

    def heard(self, consumer: NotificationConsumer, *, heartbeat: bool) -> None:
        consumer.last_seen = time.monotonic()
        if heartbeat:
            self.beaten.add(consumer.connection_id)

    # --- writers ----------------------------------------------------------------
    async def _open_writer(self) -> None:
        while True:
            await self._wakeup_opens.wait()
            self._wakeup_opens.clear()
            while self._opens:
                batch, self._opens = self._opens[: sessions.BATCH], self._opens[sessions.BATCH :]
                try:
                    await self.db(sessions.open_sessions, [row for row, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)

    async def _close_writer(self) -> None:
        while True:
            await self._wakeup_closes.wait()
            self._wakeup_closes.clear()
            while self._closes:
                batch, self._closes = self._closes, []
                self._closes_in_flight = True
                try:
                    await asyncio.shield(self.db(sessions.settle_sessions, batch))
                except Exception:
                    logger.exception("could not settle %d sessions; the next sweep or cleanup will", len(batch))
                    await asyncio.sleep(1)
                finally:
                    self._closes_in_flight = False

    async def _every(self, seconds: Callable[[], float], work: Callable[[], Any], name: str) -> None:
        while True:
            await asyncio.sleep(seconds())
            try:
                await work()
            except Exception:
                logger.exception("real-time %s failed", name)

    def _silence_loop(self):
        return self._every(lambda: self.config.heartbeat_s, self.close_silent, "silence check")

    def _heartbeat_loop(self):
        return self._every(lambda: self.config.heartbeat_write_s, self.write_heartbeats, "heartbeat write")

    def _server_loop(self):
        return self._every(lambda: self.config.server_beat_s, self.beat_and_sweep, "server beat")

    def _recheck_loop(self):
        return self._every(lambda: self.config.recheck_s, self.recheck, "re-check")

    async def _lag_monitor(self, every_s: float = 0.5, warn_s: float = 0.25) -> None:
        """Warn when the event loop was blocked: every connection's heartbeats wait that long."""
        import gc

        gc_started: list[float] = []

        def gc_timer(phase: str, info: dict) -> None:
            if phase == "start":
                gc_started[:] = [time.monotonic()]
            elif gc_started and (took := time.monotonic() - gc_started[0]) > warn_s:
                logger.warning("garbage collection of generation %s took %.2f s", info.get("generation"), took)

        gc.callbacks.append(gc_timer)
        while True:
            started = time.monotonic()
            await asyncio.sleep(every_s)
            lag = time.monotonic() - started - every_s
            self.max_lag_s = max(self.max_lag_s, lag)
            if lag > warn_s:
                logger.warning("real-time event loop blocked for %.2f s (%d connections)", lag, len(self.connections))

    async def close_silent(self) -> None:
        now = time.monotonic()
        missed = sum(1 for c in self.connections.values() if now - c.last_seen > self.config.heartbeat_s)
        if missed:
            metrics.websocket_heartbeats_missed.inc(missed)
        cutoff = now - self.config.silence_s
        for consumer in [c for c in self.connections.values() if c.last_seen < cutoff]:
            await consumer.close_with(4408, WebSocketSession.Reason.SILENT)

    async def write_heartbeats(self) -> None:
        beaten, self.beaten = self.beaten, set()
        beaten &= self.connections.keys()
        if beaten:
            self.heartbeat_writes += 1
            await self.db(sessions.write_heartbeats, beaten)

    async def beat_and_sweep(self) -> None:
        if not await self.db(servers.beat, self.server_id):
            logger.warning("real-time server %s was taken for lost (stalled?); registering again", self.server_id)
            await self.db(servers.revive, self.server_id)
            await self.db(sessions.reopen_sessions, list(self.connections), server_id=self.server_id)
        swept = await self.db(servers.sweep, dead_after_s=self.config.server_dead_after_s)
        if swept:
            logger.warning("settled the sessions of lost real-time servers %s", ", ".join(swept))

    async def recheck(self) -> None:
        snapshot = [(cid, c.identity) for cid, c in self.connections.items()]
        for connection_id, code, reason in await self.db(recheck, snapshot):
            consumer = self.connections.get(connection_id)
            if consumer is not None:
                await consumer.close_with(code, reason)


async def stop_runtime() -> None:
    """Stop the running loop's runtime, if any (tests, after their connections)."""
    runtime = Runtime.current()
    if runtime is not None:
        await runtime.shutdown()


__all__ = ["Runtime", "stop_runtime"]
