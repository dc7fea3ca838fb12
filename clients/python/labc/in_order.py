"""One thread that runs what it is given one at a time, in order: a server's publications.

A ThreadPoolExecutor of one thread does the same at a cost per item that a flood of small
publications notices (a Future, a work item, a queue with its own locks, a wake-up each);
here the reading thread appends to a deque (no lock) and wakes the worker only when it waits,
and the worker runs everything queued before it waits again.
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
        """The deque takes the item without a lock; the lock is taken only to start the worker or
        to wake it (it says it waits under the lock, then looks once more: an item appended
        before that is seen, one appended after finds it waiting and wakes it)."""
        if self._thread is None or self._closed:
            return self._submit_locked(fn, args)
        self._items.append((fn, args))
        if self._waiting:
            with self._cond:
                self._waiting = False  # woken once: what comes until it runs needs no lock
                self._cond.notify()

    def _submit_locked(self, fn: Callable[..., Any], args: tuple) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._items.append((fn, args))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            elif self._waiting:
                self._waiting = False
                self._cond.notify()

    def shutdown(self) -> None:
        """Runs what was given, then ends the thread (without waiting for it)."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        items = self._items
        while True:
            if not items:
                with self._cond:
                    while True:
                        # Said before looking: an item appended after the look finds it set.
                        self._waiting = True
                        if items:
                            break
                        if self._closed:
                            self._waiting = False
                            return
                        self._cond.wait()
                    self._waiting = False
            popleft = items.popleft
            while items:
                fn, args = popleft()
                try:
                    fn(*args)
                except Exception:
                    pass  # as an executor's future that nobody reads: the functions report their own
            # The GIL offered to the thread that submits before waiting: while it reads a
            # flood, it queues a batch meanwhile, and this thread is woken once for all of
            # them, not once per item (a wake-up, and the GIL handed over, each time).
            time.sleep(0)
