"""One labc connection: frames out (written by the sender's thread, the rest by the loop), frames in
(read by the loop), and our requests on it by id, each waiting for its answer.

Where a message is framed: frames.py. Where it is read and matched to its request: here
(``_on_readable``, ``_dispatch``). Where a request to a server is handled: server.py, through the
``handler`` given here.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional

from .errors import ConnectionLostError, FrameTooLargeError, LabcError, LimitError, error_from_exc
from .frames import MAX_FRAME, FrameReader, Kind, encode
from .io_loop import READ, WRITE, IoLoop
from .trips import tripped

#: What one read asks for. 256 KiB cost a lone call about 70 µs: CPython allocates the whole size
#: for every recv (past glibc's mmap threshold: a fresh mapping, page faults, then a shrink).
READ_CHUNK = 64 * 1024
#: A publication sent within this time of the one before on its connection may wait in the
#: kernel for the next ones (MSG_MORE) for as long; one alone, after a pause, goes at once.
HOLD_S = 0.0005
#: How long a caller reading its own answer waits at most before it looks whether the connection closed.
LEAD_SLICE_MS = 250
#: What a caller reading its connection dispatches itself (answers; a ping costs a pong).
_ANSWERS = frozenset((Kind.REP, Kind.EXC, Kind.ITEM, Kind.PING, Kind.PONG))


class Waiter:
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

    def answer(self, kind: int, body: Dict[str, Any]) -> None:
        if kind == Kind.EXC:
            self.fail(error_from_exc(body, self.function, self.target))
        else:
            self.resolve(body.get("v"))

    def item(self, body: Dict[str, Any]) -> None:
        """An item of a stream before its answer (streams override this)."""

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


class PartialBudget:
    """``limits.partial_frames``: bytes of frames not yet whole, held for all the connections
    sharing it (a server's callers); the one whose frame would pass it is closed."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0


class Connection:
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
        #: Set by whoever owns the connection (who the peer said it is, in its hello).
        self.peer: Dict[str, Any] = {}
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
        self._want_write = False
        self._events_lock = threading.Lock()
        self._poll: Any = None
        # Publications close together are held for the next (MSG_MORE): plain TCP only.
        self._may_hold = not self._tls and sock.family in (socket.AF_INET, socket.AF_INET6) and hasattr(socket, "MSG_MORE")
        self._last_burst = 0.0
        self._held_more = False
        sock.setblocking(False)
        self._fd = sock.fileno()
        self._callbacks = (self._on_readable, self._on_writable)
        loop.call_soon(self._apply_events)

    # --- sending -----------------------------------------------------------------------------

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
                            sent = self.sock.send(frame, socket.MSG_MORE)
                            hold = not self._held_more
                            self._held_more = True
                        else:
                            sent = self.sock.send(frame)
                            self._held_more = False
                        self._last_burst = now
                    else:
                        sent = self.sock.send(frame)
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
            events = (READ if not self._caller_reads and not self.paused else 0) | (WRITE if self._want_write else 0)
            self.loop.set_events(self._fd, events, self._callbacks, self._caller_reads)

    def _on_writable(self) -> None:
        with self._lock:
            while self._outbox:
                chunk = self._outbox[0]
                try:
                    sent = self.sock.send(chunk)
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

    # --- requests ----------------------------------------------------------------------------

    def request(self, kind: int, body: Dict[str, Any], waiter: Waiter, flags: int = 0) -> int:
        """Sends a request under a fresh id; ``waiter`` gets its answer (or the connection's loss)."""
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
        try:
            self.send_frame(encode(kind, id, body, flags, self.max_frame))
        except BaseException:
            with self._lock:
                self._pending.pop(id, None)
            raise
        return id

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

    # --- reading -----------------------------------------------------------------------------

    def _on_readable(self) -> None:
        if self._caller_reads or not self._read_lock.acquire(False):
            return  # a caller thread reads it (the loop saw it readable just before)
        try:
            while True:
                frames = self._read()
                if frames is None:
                    return
                for kind, flags, id, body in frames:
                    if self.closed:
                        return
                    self._dispatch(kind, flags, id, body)
                if not (self._tls and self.sock.pending()):
                    return
        finally:
            self._read_lock.release()

    def _read(self) -> Optional[list]:
        """The frames of one read (``_read_lock`` held); [] when nothing came; None once closed."""
        try:
            data = self.sock.recv(READ_CHUNK)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return []
        except OSError as error:
            self.close(error)
            return None
        if not data:
            self.close(None)
            return None
        self.bytes_in += len(data)
        held = self.reader.pending
        try:
            frames = self.reader.feed(data)
        except LabcError as error:
            # The stream is no longer aligned on frames: this connection is done, the others are not.
            limit = "max_frame_size" if isinstance(error, FrameTooLargeError) else "bad_frame"
            tripped(limit, self.remote, f"{error}; closed the connection ({self.label})")
            self.close(error)
            return None
        if self.budget is not None and self._hold(self.reader.pending):
            return None
        if frames:  # exact for the one frame of a read, what large frames are
            self.frame_bytes = (held + len(data) - self.reader.pending) // len(frames)
        if not self.reader.pending:
            self.partial_since = 0.0
        elif frames or not self.partial_since:
            # The frame left half read began in this chunk: the clock is each frame's, not the stream's.
            self.partial_since = time.monotonic()
        return frames

    def _hold(self, pending: int) -> bool:
        """Counts what this connection holds of its budget; True when that closed it."""
        budget = self.budget
        budget.used += pending - self._held
        self._held = pending
        if budget.used <= budget.limit:
            return False
        tripped("partial_frames", self.remote, f"{budget.used} bytes of frames not yet whole over all connections (its {pending}); closed the connection ({self.label})")
        self.close(LimitError(f"limit partial_frames: more than {budget.limit} bytes of frames not yet whole", data={"limit": "partial_frames"}))
        budget.used -= self._held
        self._held = 0
        return True

    # --- a caller reading its own answer -------------------------------------------------------

    def claim_reading(self) -> bool:
        """Makes this thread the connection's reader, when no other thread reads it: done before
        a request is sent, so that its answer cannot wake the loop first. ``wait`` (or
        ``release_reading``) must follow."""
        if self.closed or self.paused or not self._read_lock.acquire(False):
            return False
        self._reader = threading.get_ident()
        self._caller_reads = True
        self._apply_events()
        return True

    def release_reading(self, handed_off: bool = False) -> None:
        """Gives the reading back to the loop (nothing when this thread is not the reader)."""
        if self._reader != threading.get_ident():
            return
        self._reader = None
        if handed_off:
            return  # the loop gives the lock back once it has dispatched what it was handed
        self._caller_reads = False
        self._read_lock.release()
        self._apply_events()

    def wait(self, waiter: "Waiter", timeout: Optional[float], claimed: bool = False) -> bool:
        """Waits for ``waiter``'s answer, as ``waiter.wait``; as the connection's reader when
        ``claimed`` (or when no other thread reads it), this thread reads it meanwhile and
        dispatches what else comes, so that the answer wakes the caller itself instead of the
        loop, which then wakes the caller: one thread wake-up per call instead of two."""
        if not claimed:
            if waiter.done or not self.claim_reading():
                return waiter.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        handed_off = False
        try:
            handed_off = self._lead(waiter, deadline)
        finally:
            self.release_reading(handed_off)
        if deadline is None:
            return waiter.wait(None)
        return waiter.wait(max(0.0, deadline - time.monotonic()))

    def _lead(self, waiter: "Waiter", deadline: Optional[float]) -> bool:
        """Reads until ``waiter`` is answered, the deadline passes or the connection closes.
        True when frames the loop must dispatch were handed to it (it reads on after them)."""
        poll = self._poll
        if poll is None:
            poll = self._poll = select.poll()
            poll.register(self.sock.fileno(), select.POLLIN)
        while not waiter.done and not self.closed and not self.paused:
            if not (self._tls and self.sock.pending()):
                if deadline is None:
                    wait_ms = LEAD_SLICE_MS
                else:
                    wait_ms = min(LEAD_SLICE_MS, int((deadline - time.monotonic()) * 1000) + 1)
                    if wait_ms <= 0:
                        return False
                # In slices: a connection closed by another thread is noticed within one.
                if not poll.poll(wait_ms):
                    continue
            frames = self._read()
            if frames is None:
                return False
            for at, (kind, flags, id, body) in enumerate(frames):
                if self.closed:
                    return False
                if kind in _ANSWERS:
                    self._dispatch(kind, flags, id, body)
                else:
                    # A notice, a request for a server...: the loop's to handle, in order, and
                    # it reads on only after them.
                    rest = frames[at:]
                    self.loop.call_soon(lambda: self._dispatch_then_read(rest))
                    return True
        return False

    def _dispatch_then_read(self, frames: list) -> None:
        """The loop takes over from a caller that read frames not for it (the read lock held
        meanwhile, so that nobody reads on before these are dispatched, in order)."""
        try:
            for kind, flags, id, body in frames:
                if self.closed:
                    break
                self._dispatch(kind, flags, id, body)
        finally:
            self._caller_reads = False
            self._read_lock.release()
            self._apply_events()

    def _dispatch(self, kind: int, flags: int, id: int, body: Dict[str, Any]) -> None:
        if not self.peer and self.handler is not None and getattr(self, "accepted", False):
            # Before its hello, a peer that dialed us is heard by its server only (which closes the
            # connection for anything but a hello): a ping is not answered, an answer not taken.
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
