"""One request waiting for its answer, as the connections hand answers to it (connection.py
keeps the table of them by request id)."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional

from .errors import error_from_exc
from .frames import Kind


class Answered:
    """What the connections hand a request's answer to (by request id): an ``exc`` fails it,
    anything else resolves it with its value. Subclasses say how the asker learns it."""

    __slots__ = ()
    function: str
    target: str

    def answer(self, kind: int, body: Dict[str, Any]) -> None:
        if kind == Kind.EXC:
            self.fail(error_from_exc(body, self.function, self.target))
        else:
            self.resolve(body.get("v"))

    def item(self, body: Dict[str, Any]) -> None:
        """An item of a stream before its answer (streams override this)."""

    def resolve(self, value: Any) -> None:
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        raise NotImplementedError


class Waiter(Answered):
    """One request waiting for its answer: the asking thread sleeps on a lock until it comes."""

    __slots__ = ("_lock", "value", "error", "function", "target", "on_done", "done")

    def __init__(self, function: str, target: str, on_done: Optional[Callable[["Waiter"], None]] = None) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.value: Any = None
        self.error: Optional[BaseException] = None
        self.function = function
        self.target = target
        self.on_done = on_done
        self.done = False

    def resolve(self, value: Any) -> None:
        if self.done:
            return
        self.value, self.done = value, True
        self._release()

    def fail(self, error: BaseException) -> None:
        if self.done:
            return
        self.error, self.done = error, True
        self._release()

    def _release(self) -> None:
        self._lock.release()
        if self.on_done is not None:
            self.on_done(self)

    def wait(self, timeout: Optional[float]) -> bool:
        """True once answered; False when ``timeout`` (seconds) passed first. Ctrl-C interrupts it."""
        if timeout is None:
            return self._lock.acquire()
        return self._lock.acquire(timeout=max(0.0, timeout))
