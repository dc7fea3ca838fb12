"""How answers reach an event loop from labc's I/O thread: batched, one wake-up of the loop for
all the answers of one read (``Inbox``), each settling its future (``settle``); and the deadline
of a future (``expire``), told apart from the task's own cancelling."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from typing import Any, Callable, Deque, Tuple

from .waiter import Waiter


class Inbox:
    """What labc's I/O thread hands one event loop: one wake-up for a batch of answers, not one
    per answer (1000 calls answered in one read cost one ``call_soon_threadsafe``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: the inbox is its loop's value in ``_inboxes``, whose key it must not keep alive.
        try:
            self._loop: Callable[[], Any] = weakref.ref(loop)
        except TypeError:  # a loop that cannot be weakly referred to is kept (_kept)
            self._loop = lambda: loop
        self._items: Deque[Tuple[Callable[[Any], None], Any]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def put(self, fn: Callable[[Any], None], arg: Any) -> None:
        with self._lock:
            self._items.append((fn, arg))
            if self._scheduled:
                return
            self._scheduled = True
        loop = self._loop()
        if loop is None:
            return  # the loop is gone: nobody waits any more
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, deque()
            self._scheduled = False
        for fn, arg in items:
            fn(arg)


_inboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Inbox]" = weakref.WeakKeyDictionary()
_kept: dict = {}  # loops that cannot be weakly referred to, by id (a few at most in a process)
_inboxes_lock = threading.Lock()


def inbox_of(loop: asyncio.AbstractEventLoop) -> Inbox:
    try:
        inbox = _inboxes.get(loop)
    except TypeError:
        inbox = _kept.get(id(loop))
    if inbox is None:
        with _inboxes_lock:
            inbox = Inbox(loop)
            try:
                inbox = _inboxes.setdefault(loop, inbox)
            except TypeError:
                inbox = _kept.setdefault(id(loop), inbox)
    return inbox


def settle(pair: Tuple[asyncio.Future, Waiter]) -> None:
    future, waiter = pair
    if future.done():  # cancelled, or timed out, before the answer came
        return
    if waiter.error is not None:
        future.set_exception(waiter.error)
    else:
        future.set_result(waiter.value)


class Expired(Exception):
    """A future's deadline passed (not the task cancelled)."""


def expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(Expired())
