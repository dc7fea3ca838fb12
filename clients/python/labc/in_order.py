"""One thread that runs what it is given one at a time, in order: a server's publications.

A ThreadPoolExecutor of one thread does the same at a cost per item that a flood of small
publications notices (a Future, a work item, a queue with its own locks, a wake-up each);
here the reading thread appends to a deque and wakes the worker only when it waits, and the
worker takes everything queued at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Optional, Tuple


class InOrder:
    def __init__(self, name: str) -> None:
        self.name = name
        self._items: Deque[Tuple[Callable[..., Any], tuple]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._waiting = False
        self._closed = False
        self._thread: Optional[threading.Thread] = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._items.append((fn, args))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            elif self._waiting:
                self._cond.notify()

    def shutdown(self) -> None:
        """Runs what was given, then ends the thread (without waiting for it)."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items:
                    if self._closed:
                        return
                    self._waiting = True
                    self._cond.wait()
                    self._waiting = False
                items, self._items = self._items, deque()
            for fn, args in items:
                try:
                    fn(*args)
                except Exception:
                    pass  # as an executor's future that nobody reads: the functions report their own
            if not self._items:
                # The GIL offered to the thread that submits before waiting: while it reads a
                # flood, it queues a batch meanwhile, and this thread is woken once for all of
                # them, not once per item (a wake-up, and the GIL handed over, each time).
                time.sleep(0)
