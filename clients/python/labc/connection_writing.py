"""How a connection writes: a frame goes straight to the socket when nothing waits before it,
else into the outbox the loop empties when the socket takes more; publications close together
may wait in the kernel for the next (MSG_MORE). Part of Connection (connection.py), which sets
the state used here (``sock``, ``_lock``, ``_outbox``, ``queued``, ``_held_more``...) and closes
(``_closing``) and tells the loop what to watch (``_apply_events``)."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any, Dict, Optional

from .errors import ConnectionLostError, LimitError
from .frames import encode
from .io_loop import HOLD_S
from .trips import tripped

_MORE = int(getattr(socket, "MSG_MORE", 0))  # an int: enum flags are ORed in Python, per send


class ConnectionWriting:
    """The sending half of Connection (a mixin: it has no state of its own)."""

    def send_frame(self, frame: bytes, burst: bool = False) -> None:
        """Writes a whole frame, or queues what the socket does not take now (the loop writes it).

        ``burst``: a publication, which may wait in the kernel for the next frames when it comes
        hard on the heels of the one before (see HOLD_S); it has left the process either way."""
        wake = hold = False
        with self._lock:
            if self.closed:
                raise ConnectionLostError(f"connection to {self.label} lost", data={"target": self.label})
            if not self._outbox:
                try:
                    if burst and self._may_hold:
                        now = time.monotonic()
                        if now - self._last_burst < HOLD_S:
                            # MSG_MORE: the kernel keeps the bytes for the next send, which carries
                            # both (the receiver reads them in one go); the loop pushes what waits
                            # HOLD_S later. A process that dies meanwhile still sends them (close).
                            sent = self.sock.send(frame, _MORE | self._dontwait)
                            hold = not self._held_more
                            self._held_more = True
                        else:
                            sent = self.sock.send(frame, self._dontwait)
                            self._held_more = False
                        self._last_burst = now
                    else:
                        sent = self.sock.send(frame, self._dontwait)
                        self._held_more = False  # a send without MSG_MORE pushes what was held
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    sent = 0
                except OSError as error:
                    self._closing(error)
                    raise ConnectionLostError(f"connection to {self.label} lost: {error}", data={"target": self.label}) from error
                if sent == len(frame):
                    if hold:
                        self.loop.push_later(self)
                    return
                wake = True
                frame = memoryview(frame)[sent:]
                if self._tls:
                    # An SSL socket must be given the same bytes again after a want-write.
                    frame = memoryview(bytes(frame))
            self._outbox.append(memoryview(frame))
            self.queued += len(frame)
            if self.queued > self.max_queued:
                problem = LimitError(f"limit queued: {self.label} does not read what is sent to it ({self.queued} bytes queued)", data={"limit": "queued"})
                tripped("queued", self.remote, f"{self.queued} bytes queued, unread; closed the connection ({self.label})")
                self._closing(problem)
                raise problem
        if wake:
            self.loop.call_soon(lambda: self._watch(write=True))

        if hold:
            self.loop.push_later(self)

    def push(self) -> None:
        """Sends what MSG_MORE left waiting in the kernel (the loop calls it HOLD_S after)."""
        with self._lock:
            if self._held_more and not self.closed:
                self._held_more = False
                try:
                    self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # pushes at once (tcp(7))
                except OSError:
                    pass

    def send(self, kind: int, id: int, body: Dict[str, Any], flags: int = 0) -> None:
        self.send_frame(encode(kind, id, body, flags, self.max_frame))

    @property
    def congested(self) -> bool:
        """More is queued for the peer than ``limits.unsent``: a producer waits for ``flush``."""
        return self.queued > self.unsent_limit

    def flush(self, timeout: Optional[float] = None, below: int = 0) -> bool:
        """Waits until at most ``below`` bytes are left to write (from any thread but the loop's)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self.queued > below and not self.closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._flushed.wait(left if left is not None else 1.0)
            return self.queued <= below

    def _watch(self, write: bool) -> None:
        self._want_write = write
        self._apply_events()

    def _on_writable(self) -> None:
        with self._lock:
            while self._outbox:
                chunk = self._outbox[0]
                try:
                    sent = self.sock.send(chunk, self._dontwait)
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    return
                except OSError as error:
                    self._closing(error)
                    return
                self.queued -= sent
                if sent < len(chunk):
                    self._outbox[0] = chunk[sent:]
                    return
                self._outbox.popleft()
            self._flushed.notify_all()
        self._watch(write=False)
