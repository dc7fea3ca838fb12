"""``labc.aio.serve``: serving from an event loop until the task is cancelled, SIGTERM (or, before
Python 3.11, Ctrl-C) or ``Runtime.stop()``, then stopping without losing a call while the loop
goes on."""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
import threading
from typing import Any


async def serve_on_loop(rt: Any, *instances: Any, exclusive: bool = False) -> None:
    """What ``AioRuntime.serve`` does, for the Runtime ``rt``."""
    rt._open()
    loop = asyncio.get_running_loop()
    rt.use_event_loop(loop)
    await loop.run_in_executor(None, functools.partial(rt.serve, *instances, block=False, exclusive=exclusive))
    stopped = loop.run_in_executor(None, rt._stopped.wait)
    # SIGTERM stops serving; so does Ctrl-C, which asyncio.run() turns into cancelling its
    # task from Python 3.11 (before, it raises KeyboardInterrupt out of the loop: taken here).
    taken = []
    if threading.current_thread() is threading.main_thread():
        signals = [signal.SIGTERM]
        if sys.version_info < (3, 11) and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signals.append(signal.SIGINT)
        for number in signals:
            try:
                loop.add_signal_handler(number, rt.stop)
                taken.append(number)
            except (NotImplementedError, RuntimeError, ValueError):  # Windows, or a loop of another thread
                pass
    cancelled = False
    try:
        await stopped
    except asyncio.CancelledError:
        cancelled = True
    finally:
        for number in taken:
            loop.remove_signal_handler(number)
        # Withdraw, tell callers, answer what runs: the loop goes on meanwhile, so that
        # async functions still running on it finish.
        await asyncio.shield(loop.run_in_executor(None, rt.close))
    if cancelled:
        # Cancelling is how serving is asked to stop, not a failure: serve returns (and
        # asyncio.run() after Ctrl-C ends cleanly). The task is no longer being cancelled.
        uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Python 3.11 and newer
        if uncancel is not None:
            uncancel()

