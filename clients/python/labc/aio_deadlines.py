"""The deadlines of one loop's calls on one connection (``Deadlines``), on one timer instead of one
each: asyncio keeps timers in a heap ordered by a comparison written in Python, about seven of
them per call with 100 calls in flight, plus the handle made and cancelled.

Calls made one after the other with the same timeout expire in the order they were made, so
their deadlines queue up in order: the timer is set for the first, and when it fires every call
due is expired and the timer set for the next still waiting. The queue is pruned of answered
calls as new ones come (at its head at once, all through when it has grown twice over). A call
whose deadline comes before the last one queued (a shorter timeout) gets a timer of its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Deque, Optional, Tuple

from .aio_inbox import expire

#: How many entries the queue may hold before it is pruned all through (then twice what is left).
PRUNE_AT = 1024


class Deadlines:
    """The deadlines of the calls one LoopLink sends (aio_link.py), from the loop's thread."""

    # The loop is passed in, not kept: a link must not keep its loop alive (aio_link.py); what
    # is queued (futures, the timer) refers to it only while calls wait (``clear``).

    def __init__(self) -> None:
        self._queue: Deque[Tuple[float, asyncio.Future]] = deque()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._prune_at = PRUNE_AT

    def add(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future, timeout: float) -> Optional[asyncio.TimerHandle]:
        """Expires ``future`` (aio_inbox.Expired) in ``timeout`` seconds unless it is done by then.
        Returns the timer to cancel when the call has a timer of its own, else None."""
        at = loop.time() + timeout
        queue = self._queue
        if queue:
            if at < queue[-1][0]:
                return loop.call_at(at, expire, future)
            while queue and queue[0][1].done():
                queue.popleft()
            if len(queue) >= self._prune_at:
                self._queue = queue = deque(entry for entry in queue if not entry[1].done())
                self._prune_at = max(PRUNE_AT, 2 * len(queue))
        queue.append((at, future))
        if self._timer is None:
            self._timer = loop.call_at(at, self._fire, loop)
        return None

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        queue = self._queue
        now = loop.time()
        while queue and (queue[0][0] <= now or queue[0][1].done()):
            future = queue.popleft()[1]
            if not future.done():
                expire(future)
        if queue:
            self._timer = loop.call_at(queue[0][0], self._fire, loop)

    def clear(self) -> None:
        """None of the link's calls waits any more: nothing is left to expire."""
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
