"""A connection as one event loop uses it (``LoopLink``): while the loop's requests wait for
their answers there, the loop itself reads the socket (``loop.add_reader``) and resolves their
futures where it reads them, with no thread in between; the requests one loop iteration makes
leave in one send. ``AioWaiter`` is such a request's entry in the connection's table.

This is the blocking API's leader/follower (connection_reading.py) with the event loop as the
leader: it claims the reading before its first request is sent (so that the answer cannot wake
labc's I/O thread first) and gives it back once none of its requests waits any more. Frames that
are not answers (a notice, a server's death notice) are handed to labc's I/O thread, in order,
as a caller thread hands them. When the loop cannot claim the connection (another thread reads
it), the answers come as before: labc's I/O thread hands them over (aio_inbox.py).

The loop watches a duplicate of the socket's descriptor, its own: labc's I/O thread closes the
connection's socket whenever the connection closes, and the descriptor's number may then be
reused at once; the loop's duplicate is closed by the loop, after it stopped watching it. A
closing connection is shut down first, so that the peer sees it close at once. The loop stops
watching one loop iteration after none of its requests waits (not at once: calls one after the
other would each add and remove the descriptor), so that a loop that ends (``asyncio.run``)
leaves nothing behind; links hold their loop weakly, so that a loop ended is collected.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import weakref
from typing import Any, Dict, List, Optional

from .aio_deadlines import Deadlines
from .aio_inbox import inbox_of
from .connection import Connection
from .connection_reading import ANSWERS
from .errors import LabcError
from .frames import Kind, encode
from .waiter import Answered


class LoopLink:
    """One connection as one event loop reads and writes it (``link_of``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connection: Connection) -> None:
        self._loop = weakref.ref(loop)
        self.connection = connection
        self.thread = threading.get_ident()
        #: The loop's requests on the connection still waiting (touched by the loop's thread only).
        self.waiting = 0
        self._holds = False
        self._fd = -1  # the loop's duplicate of the socket's descriptor, while it watches it
        self._reading = False
        self._out: List[bytes] = []
        self._idle_check = False
        self._put = inbox_of(loop).put
        #: When the loop's calls here expire (cleared whenever none waits).
        self.deadlines = Deadlines()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop()  # the loop's own code calls: it is alive

    # --- reading ------------------------------------------------------------------------------

    def claim(self) -> None:
        """Before a request is sent: the loop becomes the connection's reader, if it can."""
        self.waiting += 1
        if self._holds:
            return
        connection = self.connection
        if not connection.claim_reading():
            return  # another thread reads it: its answers come through the inbox
        self._holds = True
        connection._loop_holder = self
        if self._fd < 0 and not self._watch():
            self.let_go()  # the loop cannot watch it (no descriptor left): the I/O thread reads it

    def _watch(self) -> bool:
        connection = self.connection
        try:
            fd = os.dup(connection.sock.fileno())
        except (OSError, ValueError):
            return False
        try:
            self.loop.add_reader(fd, self._on_readable)
        except Exception:
            os.close(fd)
            return False
        self._fd = fd
        connection.on_closing.append(self._closing)
        return True

    def _unwatch(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                self.connection.on_closing.remove(self._closing)
            except ValueError:
                pass
            try:
                self.loop.remove_reader(fd)
            finally:
                os.close(fd)

    def _unwatch_if_idle(self) -> None:
        self._idle_check = False
        if self.waiting <= 0 and not self._holds:
            self._unwatch()

    def let_go(self) -> None:
        """Gives the reading back (from the loop's thread): none of the loop's requests waits,
        or a blocking call made on the loop's own thread is to read its answer itself."""
        if self._holds:
            self._holds = False
            self.connection._loop_holder = None
            self.connection.release_reading()
        if self._fd >= 0 and not self._idle_check:
            self._idle_check = True
            self.loop.call_soon(self._unwatch_if_idle)

    def settled(self) -> None:
        """One of the loop's requests got its answer or was given up (from the loop's thread)."""
        self.waiting -= 1
        if self.waiting <= 0:
            self.deadlines.clear()
            if not self._reading:
                self.let_go()

    def _on_readable(self) -> None:
        connection = self.connection
        if not self._holds:
            # The socket is watched for nothing of ours now (the reading was handed on): take
            # it again only for requests of ours, when nobody else reads it.
            if self.waiting <= 0 or connection.closed or not connection.claim_reading():
                self._unwatch()
                return
            self._holds = True
            connection._loop_holder = self
        self._reading = True
        try:
            while True:
                frames = connection._read()
                if frames is None:  # closed (by the peer, or an error): the I/O thread fails the rest
                    self._unwatch()
                    self.let_go()
                    return
                dispatch = connection._dispatch
                for at, (kind, flags, id, body) in enumerate(frames):
                    if kind in ANSWERS:
                        dispatch(kind, flags, id, body)
                    elif not connection.closed:
                        # Not an answer: labc's I/O thread handles it and what follows, in order,
                        # and reads on after them (the read lock goes with them).
                        rest = frames[at:]
                        self._holds = False
                        connection._loop_holder = None
                        connection._reader = None
                        connection.loop.call_soon(lambda: connection._dispatch_then_read(rest))
                        self._unwatch()
                        return
                if not (connection._tls and connection.sock.pending()):
                    break
        finally:
            self._reading = False
        if self.waiting <= 0:
            self.let_go()

    def _closing(self, connection: Connection) -> None:
        """The connection closes (on labc's I/O thread, before its socket is closed)."""
        if self._fd >= 0:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)  # the loop's descriptor keeps it open
            except OSError:
                pass
        loop = self._loop()
        try:
            if loop is None:
                raise RuntimeError("the loop is gone")
            loop.call_soon_threadsafe(self._closed)
        except RuntimeError:  # the loop is closed: nobody watches the descriptor any more
            fd, self._fd = self._fd, -1
            if fd >= 0:
                os.close(fd)

    def _closed(self) -> None:
        self._unwatch()
        self._holds = False
        links = _links.get(self._loop())
        if links is not None and links.get(self.connection) is self:
            del links[self.connection]

    # --- writing ------------------------------------------------------------------------------

    def write(self, frame: bytes) -> None:
        """Sends ``frame`` with the others of this loop iteration, in one send, in order; at once
        when it is the loop's only request waiting here (a lone call waits for no iteration)."""
        out = self._out
        if not out:
            if self.waiting <= 1:
                try:
                    self.connection.send_frame(frame)
                except LabcError:
                    pass  # the connection closed: its requests fail with ConnectionLostError
                return
            self.loop.call_soon(self._flush)
        out.append(frame)

    def _flush(self) -> None:
        out, self._out = self._out, []
        try:
            self.connection.send_frame(out[0] if len(out) == 1 else b"".join(out))
        except LabcError:
            pass  # the connection closed: its requests fail with ConnectionLostError

    def cancel(self, id: int) -> None:
        """Stops waiting for request ``id`` and tells the server (after the request itself)."""
        self.connection.forget(id)
        try:
            self.write(encode(Kind.CANCEL, id, {}))
        except LabcError:
            pass


class AioWaiter(Answered):
    """A request of the loop's in the connection's table: its answer settles ``future`` on the
    loop's thread, at once when the loop read it, else through the loop's inbox."""

    __slots__ = ("future", "link", "function", "target", "done", "_counted")

    def __init__(self, future: asyncio.Future, link: LoopLink, function: str, target: str) -> None:
        self.future = future
        self.link = link
        self.function = function
        self.target = target
        self.done = False
        self._counted = True

    def resolve(self, value: Any) -> None:
        self._finish((value, None))

    def fail(self, error: BaseException) -> None:
        self._finish((None, error))

    def _finish(self, outcome: tuple) -> None:
        if not self.done:
            self.done = True
            if threading.get_ident() == self.link.thread:
                self._settle(outcome)
            else:
                self.link._put(self._settle, outcome)

    def _settle(self, outcome: tuple) -> None:
        future = self.future
        if not future.done():
            value, error = outcome
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)
        self.given_up()

    def given_up(self) -> None:
        """No longer counted as waiting (answered, timed out or cancelled; the loop's thread)."""
        if self._counted:
            self._counted = False
            self.link.settled()


_links: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[Connection, LoopLink]]" = weakref.WeakKeyDictionary()


def link_of(loop: asyncio.AbstractEventLoop, connection: Connection) -> Optional[LoopLink]:
    """The link of ``connection`` for ``loop`` (the loop's thread); None when the loop cannot
    watch a socket itself (no ``add_reader``: Windows' proactor loop)."""
    try:
        links = _links[loop]
    except KeyError:
        if not _watches_sockets(loop):
            return None
        links = _links[loop] = {}
    except TypeError:  # a loop that cannot be weakly referred to: answered through the inbox
        return None
    link = links.get(connection)
    if link is None:
        if connection.closed:
            return None
        if len(links) > 64:
            for known in [c for c in links if c.closed]:
                del links[known]
        link = links[connection] = LoopLink(loop, connection)
    return link


def _watches_sockets(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        loop.remove_reader(-1)
    except NotImplementedError:
        return False
    except (ValueError, OSError, TypeError, KeyError):
        pass
    return hasattr(os, "dup")
