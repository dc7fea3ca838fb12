"""How a connection reads: the loop reads it when told it is readable, or a caller thread waiting
for its answer reads it itself meanwhile (the leader; the loop follows), so that the answer wakes
the caller, not the loop which then wakes the caller. Either way, frames are cut out of the
stream, the bytes of frames not yet whole are counted against limits.partial_frames, and each
frame goes to ``_dispatch``. Part of Connection (connection.py), which sets the state used here
(``sock``, ``reader``, ``budget``, ``partial_since``, ``_read_lock``, ``_caller_reads``...),
dispatches (``_dispatch``), closes (``close``) and tells the loop what to watch
(``_apply_events``)."""

from __future__ import annotations

import select
import ssl
import threading
import time
from typing import Optional

from .errors import FrameTooLargeError, LabcError, LimitError
from .frames import Kind
from .trips import tripped
from .waiter import Waiter

#: What one read asks for. 256 KiB cost a lone call about 70 µs: CPython allocates the whole size
#: for every recv (past glibc's mmap threshold: a fresh mapping, page faults, then a shrink).
READ_CHUNK = 64 * 1024
#: How long a caller reading its own answer waits at most before it looks whether the connection closed.
LEAD_SLICE_MS = 250
LEAD_SLICE_S = LEAD_SLICE_MS / 1000
#: What a caller reading its connection dispatches itself (answers; a ping costs a pong).
ANSWERS = frozenset((Kind.REP, Kind.EXC, Kind.ITEM, Kind.PING, Kind.PONG))


class PartialBudget:
    """``limits.partial_frames``: bytes of frames not yet whole, held for all the connections
    sharing it (a server's callers); the one whose frame would pass it is closed."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0


class ConnectionReading:
    """The reading half of Connection (a mixin: it has no state of its own)."""

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

    def _read(self, wait: bool = False) -> Optional[list]:
        """The frames of one read (``_read_lock`` held); [] when nothing came; None once closed.
        ``wait``: sleeps in recv until something comes, at most LEAD_SLICE_MS (a blocking socket)."""
        try:
            data = self.sock.recv(READ_CHUNK, 0 if wait else self._dontwait)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return []
        except OSError as error:
            self.close(error)
            return None
        if not data:
            self.close(None)
            return None
        self.bytes_in += len(data)
        reader = self.reader
        held = reader.pending
        try:
            frames = reader.feed(data)
        except LabcError as error:
            # The stream is no longer aligned on frames: this connection is done, the others are not.
            limit = "max_frame_size" if isinstance(error, FrameTooLargeError) else "bad_frame"
            tripped(limit, self.remote, f"{error}; closed the connection ({self.label})")
            self.close(error)
            return None
        pending = reader.pending
        if self.budget is not None and self._hold(pending):
            return None
        if frames:  # exact for the one frame of a read, what large frames are
            self.frame_bytes = (held + len(data) - pending) // len(frames)
        if not pending:
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
        if self.closed or self.paused:
            return False
        if not self._read_lock.acquire(False):
            holder = self._loop_holder
            if holder is None or holder.thread != threading.get_ident():
                return False
            # This thread's own event loop reads it (aio_link.py), and waits while this thread
            # blocks: it gives the reading back, or nobody would read this caller's answer.
            holder.let_go()
            if not self._read_lock.acquire(False):
                return False
        self._reader = threading.get_ident()
        self._caller_reads = True
        self._claims += 1
        if not self._parked:
            self._parked = True
            self._apply_events()
        return True

    def release_reading(self, handed_off: bool = False) -> None:
        """Gives the reading back to the loop (nothing when this thread is not the reader). The
        loop watches the socket again once no caller has claimed it for a moment (``unpark``)."""
        if self._reader != threading.get_ident():
            return
        self._reader = None
        if handed_off:
            return  # the loop gives the lock back once it has dispatched what it was handed
        self._caller_reads = False
        if self._pending:
            # Others wait for answers here (threads, tasks): the loop reads them from now on.
            self._parked = False
            self._read_lock.release()
            self._apply_events()
            return
        listed = self._park_listed
        self._park_listed = True
        self._read_lock.release()
        if not listed:
            self.loop.park(self)

    def unpark(self) -> bool:
        """The loop watches the socket for reading again, and takes it off its list (from the
        loop's thread), unless a caller reads it now: False then."""
        if not self._read_lock.acquire(False):
            return False
        try:
            self._park_listed = False
            self.loop._parks.pop(self, None)
            if self._parked:
                self._parked = False
                self._apply_events()
        finally:
            self._read_lock.release()
        return True

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
        if waiter.done:
            return True
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
        blocking = self._blocking_reads
        while not waiter.done and not self.closed and not self.paused:
            if blocking and (deadline is None or deadline - time.monotonic() > LEAD_SLICE_S):
                # Sleeps in recv itself, in slices too (SO_RCVTIMEO): no poll before it.
                frames = self._read(True)
            elif not (self._tls and self.sock.pending()):
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
            else:
                frames = self._read()
            if frames is None:
                return False
            for at, (kind, flags, id, body) in enumerate(frames):
                if self.closed:
                    return False
                if kind in ANSWERS:
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
            self._parked = False
            self._read_lock.release()
            self._apply_events()
