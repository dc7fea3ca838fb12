"""``labc.context()``: inside a served function, who called, until when, and whether it was cancelled."""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .errors import NoCallContextError


@dataclass
class Caller:
    """Who sent the call, as its hello said (``host`` is the name of its host)."""

    id: str
    host: str
    host_id: str
    pid: int


@dataclass
class CallContext:
    function: str
    #: time.time() by which the caller stops waiting (None: it waits as long as it takes).
    deadline: Optional[float]
    caller: Optional[Caller]
    from_other_host: bool = False
    from_other_site: bool = False
    #: Set when the caller gave the call up (Ctrl-C, a timeout, a closed connection).
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def time_left(self) -> Optional[float]:
        """Seconds until the deadline (None without one)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.time())

    def wait_cancelled(self, timeout: Optional[float] = None) -> bool:
        """Sleeps up to ``timeout`` s, waking at once when the call is cancelled (then True)."""
        return self.cancel_event.wait(timeout)

    def cancel(self) -> None:
        self.cancel_event.set()


_current: contextvars.ContextVar[Optional[CallContext]] = contextvars.ContextVar("labc_call", default=None)


def context() -> CallContext:
    """The call being served by this thread (or task); NoCallContextError outside one."""
    call = _current.get()
    if call is None:
        raise NoCallContextError("labc.context() was called outside a served call")
    return call


def caller_of(peer: Dict[str, Any]) -> Optional[Caller]:
    if not isinstance(peer.get("id"), str):
        return None
    pid = peer.get("pid")
    return Caller(id=peer["id"], host=str(peer.get("host") or ""), host_id=str(peer.get("hostId") or ""), pid=pid if isinstance(pid, int) else 0)


def set_current(call: Optional[CallContext]):
    return _current.set(call)


def reset_current(token) -> None:
    _current.reset(token)
