"""One labc connection: its state, our requests on it by id (each a Waiter, waiting for its
answer), what comes in matched to them or handed to its ``handler``, and its closing.

Where a message is framed: frames.py. How the connection writes: connection_writing.py; how it
reads, by the loop or by a caller waiting for its answer: connection_reading.py. Where a request
to a server is handled: server.py, through the ``handler`` given here.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional

from .connection_reading import LEAD_SLICE_MS, ConnectionReading, PartialBudget
from .connection_writing import ConnectionWriting
from .errors import ConnectionLostError, LabcError
from .frames import MAX_FRAME, FrameReader, Kind, RequestHead, encode
from .io_loop import READ, WRITE, IoLoop
from .waiter import Waiter

__all__ = ["Connection", "PartialBudget", "Waiter"]

_PUB = Kind.PUB


class Connection(ConnectionWriting, ConnectionReading):
    """A TCP (or TLS) connection speaking labc frames. Thread-safe for senders."""

    def __init__(
        self,
        loop: IoLoop,
        sock: socket.socket,
        label: str,
        handler: Optional[Callable[["Connection", int, int, int, Dict[str, Any]], None]] = None,
        max_frame: int = MAX_FRAME,
        max_queued: int = 256 * 1024 * 1024,
        unsent_limit: int = 8 * 1024 * 1024,
        budget: Optional[PartialBudget] = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.label = label
        self.handler = handler
        self.reader = FrameReader(max_frame)
        self.max_frame = max_frame
        self.max_queued = max(max_queued, 2 * max_frame)
        self.unsent_limit = unsent_limit
        self.budget = budget
        self._held = 0  # of the budget
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)
        self._outbox: Deque[memoryview] = deque()
        self.queued = 0
        self._pending: Dict[int, Waiter] = {}
        self._next_id = 0
        self.closed = False
        self.close_reason: Optional[BaseException] = None
        self.on_close: list = []
        #: When the first byte of a frame still incomplete came (limits.frame_timeout).
        self.partial_since = 0.0
        #: Not read for now (``pause``): a server holds a peer back this way.
        self.paused = False
        #: Bytes read so far, and the size of the frame being handled (an average over its read).
        self.bytes_in = 0
        self.frame_bytes = 0
        #: Its publications a server has yet to run: ``bytes_in`` when each came (their span is
        #: what they hold, give or take a read). Server-side (server_publications.py).
        self.pub_marks: Deque[int] = deque()
        #: Set by whoever owns the connection (who the peer said it is, in its hello).
        self.peer: Dict[str, Any] = {}
        #: A peer that dialed us (a server's caller): set by the server that accepted it.
        self.accepted = False
        self.opened_at = time.monotonic()
        try:
            #: The peer's ``address:port``, as the kernel says (trips name it).
            self.remote = "%s:%s" % sock.getpeername()[:2]
        except OSError:
            self.remote = "?"
        self._tls = isinstance(sock, ssl.SSLSocket)
        # Who reads: the loop, or (``wait``) a caller thread waiting for its answer, which reads
        # the connection itself meanwhile (no hand-off between threads: one wake-up per call).
        # ``_read_lock`` is held by whoever reads; ``_caller_reads`` keeps the loop off it.
        self._read_lock = threading.Lock()
        self._caller_reads = False
        self._reader: Optional[int] = None
        # The loop does not watch for reading while ``_parked``: from a caller's claim until the
        # loop sees no caller claimed it for a while (``unpark``), so that calls one after the
        # other do not each take the socket from the loop and give it back (two epoll_ctl).
        self._parked = False
        self._park_listed = False
        self._claims = 0
        self._want_write = False
        self._events_lock = threading.Lock()
        self._poll: Any = None
        #: The event loop reading it for its requests (aio_link.py's LoopLink), if one does.
        self._loop_holder: Any = None
        #: Called (on labc's I/O thread) as the connection closes, before its socket is closed.
        self.on_closing: list = []
        # Publications close together are held for the next (MSG_MORE): plain TCP only.
        self._may_hold = not self._tls and sock.family in (socket.AF_INET, socket.AF_INET6) and hasattr(socket, "MSG_MORE")
        self._last_burst = 0.0
        self._held_more = False
        # A plain socket stays blocking, so that a caller waiting for its answer sleeps in recv
        # itself, with no poll before it (``_lead``), in slices of LEAD_SLICE_MS (SO_RCVTIMEO);
        # every other read and write says MSG_DONTWAIT. TLS sockets do not take the flag.
        self._dontwait = 0
        self._blocking_reads = False
        if not self._tls and type(sock) is socket.socket and hasattr(socket, "MSG_DONTWAIT") and hasattr(socket, "SO_RCVTIMEO"):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", 0, LEAD_SLICE_MS * 1000))
                sock.setblocking(True)
                self._dontwait = int(socket.MSG_DONTWAIT)  # an int: flags of enums are ORed in Python, per send
                self._blocking_reads = True
            except (OSError, struct.error):
                sock.setblocking(False)
        else:
            sock.setblocking(False)
        self._fd = sock.fileno()
        self._callbacks = (self._on_readable, self._on_writable)
        loop.call_soon(self._apply_events)

    # --- what the loop watches for -------------------------------------------------------------

    def pause(self) -> None:
        """Stops reading (from the loop's thread): the peer's writes wait in its own kernel. The
        frame clock stops meanwhile, since the slowness is ours (docs/reliability.md#limits)."""
        self.paused = True
        self._apply_events()

    def resume(self) -> None:
        """Reads again (from the loop's thread); a frame left half read gets its clock anew."""
        self.paused = False
        if self.partial_since:
            self.partial_since = time.monotonic()
        self._apply_events()

    def _apply_events(self) -> None:
        """Tells the loop what to wait for on the socket, from the state (any thread)."""
        with self._events_lock:
            if self.closed:
                return
            events = (READ if not self._parked and not self.paused else 0) | (WRITE if self._want_write else 0)
            self.loop.set_events(self._fd, events, self._callbacks, self._parked)

    # --- requests ----------------------------------------------------------------------------

    def _take_id(self, waiter: Waiter) -> int:
        """A fresh request id (never 0, never one still waited for), with ``waiter`` under it."""
        with self._lock:
            if self.closed:
                raise ConnectionLostError(f"connection to {self.label} lost", data={"target": self.label})
            id = self._next_id
            while True:
                id = id + 1 if id < 0xFFFFFFFF else 1
                if id not in self._pending:
                    break
            self._next_id = id
            self._pending[id] = waiter
        return id

    def _send_request(self, id: int, frame: bytes) -> int:
        try:
            self.send_frame(frame)
        except BaseException:
            with self._lock:
                self._pending.pop(id, None)
            raise
        return id

    def request(self, kind: int, body: Dict[str, Any], waiter: Waiter, flags: int = 0) -> int:
        """Sends a request under a fresh id; ``waiter`` gets its answer (or the connection's loss)."""
        id = self._take_id(waiter)
        if self._parked and not self._caller_reads:
            # Parked after a caller's answer, and nobody reads it for this one (a stream, the
            # asyncio face, a router's request): the loop watches it again now.
            self.loop.call_soon(self.unpark)
        try:
            frame = encode(kind, id, body, flags, self.max_frame)
        except BaseException:
            with self._lock:
                self._pending.pop(id, None)
            raise
        return self._send_request(id, frame)

    def request_head(self, head: RequestHead, args_json: bytes, waiter: Waiter) -> int:
        """``request`` of a call whose request is ``head`` around ``args_json`` (calls.py's
        common call: no body to build and walk)."""
        id = self._take_id(waiter)
        return self._send_request(id, head.frame(id, args_json))

    def forget(self, id: int) -> None:
        """Stops waiting for request ``id`` (timed out or cancelled)."""
        with self._lock:
            self._pending.pop(id, None)

    def ask(self, kind: int, body: Dict[str, Any], function: str, timeout: float) -> Any:
        """Sends a request and waits for its answer (for the router's small requests)."""
        waiter = Waiter(function, self.label)
        id = self.request(kind, body, waiter)
        if not waiter.wait(timeout):
            self.forget(id)
            from .errors import CallTimeout

            raise CallTimeout(f'call to "{function}" on {self.label} timed out after {int(timeout * 1000)} ms', data={"function": function, "timeoutMs": int(timeout * 1000)})
        if waiter.error is not None:
            raise waiter.error
        return waiter.value

    # --- what comes in ------------------------------------------------------------------------

    def _dispatch(self, kind: int, flags: int, id: int, body: Dict[str, Any]) -> None:
        if self.accepted and not self.peer and self.handler is not None:
            # Before its hello, a peer that dialed us is heard by its server only (which closes the
            # connection for anything but a hello): a ping is not answered, an answer not taken.
            self.handler(self, kind, flags, id, body)
            return
        if kind == _PUB:
            if self.handler is not None:
                self.handler(self, kind, flags, id, body)
            return
        if kind in (Kind.REP, Kind.EXC):
            with self._lock:
                waiter = self._pending.pop(id, None)
            if waiter is not None:
                waiter.answer(kind, body)
            return
        if kind == Kind.ITEM:
            waiter = self._pending.get(id)
            if waiter is not None:
                waiter.item(body)
            return
        if kind == Kind.PING:
            try:
                self.send(Kind.PONG, id, {})
            except LabcError:
                pass
            return
        if kind == Kind.PONG:
            with self._lock:
                waiter = self._pending.pop(id, None)
            if waiter is not None:
                waiter.resolve(None)
            return
        if self.handler is not None:
            self.handler(self, kind, flags, id, body)

    # --- closing -----------------------------------------------------------------------------

    def _closing(self, reason: Optional[BaseException]) -> None:
        """Marks the connection closed (lock held); the loop finishes the job."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._flushed.notify_all()
        self.loop.call_soon(self._finish_close, now_in_loop=False)

    def close(self, reason: Optional[BaseException] = None) -> None:
        """Closes now: every request waiting on it fails with ConnectionLostError."""
        with self._lock:
            self._closing(reason)

    def close_after_flush(self, timeout: float = 2.0) -> None:
        """Closes once what was queued has left (or ``timeout`` passed)."""
        self.flush(timeout)
        self.close()

    def _finish_close(self) -> None:
        if self.budget is not None:
            self.budget.used -= self._held
            self._held = 0
        with self._events_lock:
            self.loop.forget(self.sock)
        for callback in list(self.on_closing):
            callback(self)
        try:
            self.sock.close()
        except OSError:
            pass
        with self._lock:
            pending, self._pending = self._pending, {}
        reason = self.close_reason
        for waiter in pending.values():
            lost = ConnectionLostError(
                f'connection to {self.label} lost during call to "{waiter.function}"' + (f" ({reason})" if reason else ""),
                data={"target": self.label, "function": waiter.function},
            )
            waiter.fail(lost)
        for callback in self.on_close:
            try:
                callback(self)
            except Exception:
                import traceback

                traceback.print_exc()
