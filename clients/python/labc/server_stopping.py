"""How a server stops: telling every caller it leaves (a death notice), no longer accepting, and
waiting for the calls running (``drain``), then closing (``close``). Part of Server
(server.py), which sets the state used here (``leaving``, ``_told``, ``listener``...)."""

from __future__ import annotations

import time

from .connection import Connection
from .errors import LabcError
from .frames import Kind
from .waiter import Waiter


class ServerStopping:
    """The stopping part of Server (a mixin: it has no state of its own)."""

    def _tell(self, connection: Connection) -> None:
        waiter = Waiter("leaving", connection.label)
        try:
            connection.request(Kind.DEATH, {"server": self.id}, waiter)
            self._told.append(waiter)
        except LabcError:
            pass

    def drain(self, timeout: float) -> None:
        """Tells every caller this server leaves, stops accepting, and waits for the calls running."""
        deadline = time.monotonic() + timeout
        self.leaving = True
        for connection in list(self.connections.values()):
            self._tell(connection)
        seen = -1
        while seen != len(self._told) and time.monotonic() < deadline:
            seen = len(self._told)
            for waiter in list(self._told):
                waiter.wait(max(0.0, deadline - time.monotonic()))
            time.sleep(0.01)  # connections waiting to be accepted are, and told
        listener, self.listener = self.listener, None
        if listener is not None:
            self.loop.call_soon(lambda: (self.loop.forget(listener), listener.close()))
        while any(self._running.values()) and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            running = [call for calls in self._running.values() for call in calls.values()]
        if running:
            self.rt.warn(f"stopping with {len(running)} call(s) unfinished after {timeout:g} s")
            for call in running:
                call.cancel()

    def close(self) -> None:
        for connection in list(self.connections.values()):
            connection.close_after_flush(1.0)
        listener, self.listener = self.listener, None
        if listener is not None:
            self.loop.call_soon(lambda: (self.loop.forget(listener), listener.close()))
        self.executor.shutdown(wait=False)
        self._publications.shutdown()
        for serial in self._serial.values():
            serial.shutdown(wait=False)
