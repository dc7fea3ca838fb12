"""A stream a caller reads (``labc.stream(name, ...)``): items come as the reader takes them, with
the protocol's credit, so a slow reader slows the producer; leaving the loop cancels it."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional

from .errors import CallTimeout, error_from_exc
from .frames import Kind
from .waiter import Waiter

_END = object()


class StreamWaiter(Waiter):
    """Collects a stream's items and its end, filled by the loop's thread."""

    __slots__ = ("items", "cond", "ended", "on_item", "streamed")

    def __init__(self, function: str, target: str) -> None:
        super().__init__(function, target)
        self.items: Deque[Any] = deque()
        self.cond = threading.Condition(threading.Lock())
        self.ended = False
        #: Whether the function streams (an item came, or an end of stream), not returns one value.
        self.streamed = False
        #: Called on the loop's thread for each item (the asyncio face wakes its task).
        self.on_item: Optional[Callable[[], None]] = None

    def item(self, body: Dict[str, Any]) -> None:
        with self.cond:
            self.streamed = True
            self.items.append(body.get("v"))
            self.cond.notify()
        if self.on_item is not None:
            self.on_item()

    def answer(self, kind: int, body: Dict[str, Any]) -> None:
        with self.cond:
            if kind == Kind.EXC:
                self.items.append(_Failure(error_from_exc(body, self.function, self.target)))
            elif body.get("done") is True:
                self.streamed = True
            else:
                # The function returned one value, not a stream: the reader gets it as one item.
                self.items.append(body.get("v"))
            self.items.append(_END)
            self.cond.notify()
        self.resolve(None)
        if self.on_item is not None:
            self.on_item()

    def fail(self, error: BaseException) -> None:
        with self.cond:
            self.items.append(_Failure(error))
            self.items.append(_END)
            self.cond.notify()
        super().fail(error)
        if self.on_item is not None:
            self.on_item()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Stream:
    """Iterate it (``for item in labc.stream(...)``); ``close()`` (or leaving a ``with`` block, or
    the loop, once nothing refers to it) cancels the producer."""

    def __init__(self, function: str, waiter: StreamWaiter, route: Any, id: int, window: int, timeout: float) -> None:
        self.function = function
        self._waiter = waiter
        self._route = route
        self._id = id
        self._window = window
        self._read = 0
        self._timeout = timeout
        self._started = False
        self._done = False

    @property
    def streamed(self) -> bool:
        """Whether the function streams its items (True once one came), or returned one value."""
        return self._waiter.streamed

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> Any:
        item = self.next_item(self._timeout if not self._started else None)
        if item is _END:
            raise StopIteration
        return item

    def next_item(self, timeout: Optional[float]) -> Any:
        """The next item, or _END; raises what the producer raised."""
        if self._done:
            return _END
        waiter = self._waiter
        deadline = None if timeout is None else time.monotonic() + timeout
        with waiter.cond:
            while not waiter.items:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self.close()
                    raise CallTimeout(f'call to "{self.function}" on {waiter.target} timed out after {int(self._timeout * 1000)} ms',
                                      data={"function": self.function, "timeoutMs": int(self._timeout * 1000)})
                waiter.cond.wait(left)
            item = waiter.items.popleft()
        return self._took(item)

    def poll(self) -> Any:
        """The next item if one is there (None when none yet): for the asyncio face."""
        with self._waiter.cond:
            if not self._waiter.items:
                return None
            item = self._waiter.items.popleft()
        return (self._took(item),)

    def _took(self, item: Any) -> Any:
        if item is _END:
            self._done = True
            return _END
        if isinstance(item, _Failure):
            self._done = True
            raise item.error
        self._started = True
        self._read += 1
        # Credit in halves of the window: few credit frames, and the producer never waits.
        if self._read >= max(1, self._window // 2):
            n, self._read = self._read, 0
            try:
                self._route.credit(self._id, n)
            except Exception:
                pass
        return item

    def close(self) -> None:
        """Stops reading: the producer is cancelled (its ``finally`` blocks run)."""
        if self._done:
            return
        self._done = True
        self._route.cancel(self._id)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


END = _END
