"""ASGI lifespan: start the process's real-time runtime, and on SIGTERM close every socket with 1001 first.

uvicorn's own shutdown closes WebSockets with 1012 and only then tells the application.
So at start-up the runtime chains a SIGTERM handler in front of uvicorn's: it closes the
connections with 1001 (going away), settles their rows and leaves the server registry,
then hands the signal to uvicorn, which finds the sockets already closed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading

from realtime.runtime import Runtime

logger = logging.getLogger("realtime")


async def lifespan(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                runtime = await Runtime.ensure()
                _chain_sigterm(runtime)
                _tune_garbage_collector()
            except Exception as exc:
                logger.exception("real-time start-up failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            runtime = Runtime.current()
            if runtime is not None:
                await runtime.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _tune_garbage_collector() -> None:
    """Fewer, smaller full collections: each one stops the event loop, heartbeats of every connection wait.

    Measured at 5,000 connections: with CPython's default thresholds a full collection came every
    minute or so and stopped the loop for 0.3-1 s (the p99 heartbeat round trip). The start-up heap
    (Django, the apps) is frozen out of every collection, young collections run every 50,000
    allocations, and a full one only after 20 middle ones, minutes apart; the memory of closed
    connections' reference cycles comes back then.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _chain_sigterm(runtime: Runtime) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def hand_on(sig, frame) -> None:
        if callable(previous):
            previous(sig, frame)
        else:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)

    async def close_then_hand_on(sig, frame) -> None:
        try:
            await runtime.shutdown()
        except Exception:
            logger.exception("real-time shutdown failed")
        finally:
            hand_on(sig, frame)

    def on_sigterm(sig, frame) -> None:
        if runtime.stopping:
            hand_on(sig, frame)
            return
        loop.call_soon_threadsafe(lambda: loop.create_task(close_then_hand_on(sig, frame)))

    signal.signal(signal.SIGTERM, on_sigterm)
