"""One background thread that reads every socket of the process and writes what could not go at once.

Lab scripts and notebooks call labc from ordinary (blocking) code: a caller's thread writes its
frame itself and waits on a lock; this thread reads the answers and releases the waiters. It is a
daemon thread, so a Jupyter kernel or a script never hangs on it, and a selector (not a thread
per connection) keeps a server that many peers dial, or a flood of idle connections, at one thread.
"""

from __future__ import annotations

import select
import selectors
import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional, Tuple

#: How often timers (hello and frame timeouts, flush waits) are checked.
TICK_S = 0.25
#: A publication sent within this time of the one before on its connection may wait in the
#: kernel for the next ones (MSG_MORE) for as long; one alone, after a pause, goes at once.
#: The connection decides (connection_writing.py); the loop pushes what waits this long after.
HOLD_S = 0.0005
#: A socket a caller read its answer from is watched again once no caller has claimed it for
#: this long (connection_reading.py, ``unpark``): a notice coming between calls waits no longer.
PARK_S = 0.002


READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
#: On Linux the loop uses epoll itself: a socket a caller thread reads for a moment stays
#: registered with no events (EPOLL_CTL_MOD, about 1 µs) instead of leaving and joining again
#: (DEL and ADD, about 6 µs), which the selectors module cannot express.
_EPOLL = hasattr(select, "epoll")


class IoLoop:
    def __init__(self, name: str = "labc io") -> None:
        if _EPOLL:
            self._epoll = select.epoll()
        else:
            self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._calls: Deque[Callable[[], None]] = deque()
        # What is watched, by fd: (events, (on_read, on_write)). Changed from any thread under
        # the lock (a caller reading its own answer parks its socket); read by the loop.
        self._watching = threading.Lock()
        self._watched: Dict[int, Tuple[int, Any]] = {}
        self._register(self._wake_r.fileno(), READ, None)
        self._watched[self._wake_r.fileno()] = (READ, None)
        self._ticks: list = []
        # Connections holding publications in the kernel, pushed when _push_at comes.
        self._pushes: list = []
        self._push_at = 0.0
        self._push_lock = threading.Lock()
        # Connections a caller read, with their count of claims when last looked at (park).
        self._parks: Dict[Any, int] = {}
        self._stopping = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    @property
    def in_loop(self) -> bool:
        return threading.current_thread() is self.thread

    def call_soon(self, fn: Callable[[], None], now_in_loop: bool = True) -> None:
        """Runs ``fn`` on the loop's thread (at once when called from it, unless ``now_in_loop``
        is False: a caller holding a lock the function takes)."""
        if self.in_loop:
            if now_in_loop:
                fn()
            else:
                self._calls.append(fn)
            return
        self._calls.append(fn)
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake (the pipe is full) or stopping

    def push_later(self, connection: Any) -> None:
        """Calls ``connection.push()`` on the loop's thread about HOLD_S from now."""
        with self._push_lock:
            first = not self._pushes
            self._pushes.append(connection)
            if first:
                self._push_at = time.monotonic() + HOLD_S
        if first and not self.in_loop:
            try:
                self._wake_w.send(b"\0")
            except (BlockingIOError, OSError):
                pass

    def park(self, connection: Any) -> None:
        """Calls ``connection.unpark()`` on the loop's thread once no caller has claimed it for
        PARK_S (from any thread; ``unpark`` takes it off the list)."""
        parks = self._parks
        first = not parks
        parks[connection] = -1
        if first and not self.in_loop:
            try:
                self._wake_w.send(b"\0")  # it may sleep for a whole tick: PARK_S from now, rather
            except (BlockingIOError, OSError):
                pass

    def _run_parks(self) -> None:
        parks = self._parks
        for connection, seen in list(parks.items()):
            claims = connection._claims
            if connection.closed:
                parks.pop(connection, None)
            elif claims != seen:
                parks[connection] = claims  # claimed since: look again later
            else:
                connection.unpark()

    def _run_pushes(self) -> None:
        with self._push_lock:
            if not self._pushes or time.monotonic() < self._push_at:
                return
            pushes, self._pushes = self._pushes, []
        for connection in pushes:
            try:
                connection.push()
            except Exception:
                import traceback

                traceback.print_exc()

    def _timeout(self) -> float:
        limit = PARK_S if self._parks else TICK_S
        with self._push_lock:
            if not self._pushes:
                return limit
            return min(limit, max(0.0, self._push_at - time.monotonic()))

    def every_tick(self, fn: Callable[[float], None]) -> None:
        """Runs ``fn(now)`` on the loop's thread about every TICK_S (timeouts)."""
        self.call_soon(lambda: self._ticks.append(fn))

    def watch(self, sock, on_read: Optional[Callable[[], None]], on_write: Optional[Callable[[], None]], park: bool = False) -> None:
        """Sets what the loop waits for on ``sock``, from any thread (epoll takes changes while
        the loop waits in it). Nothing to wait for: the socket leaves the loop, or with ``park``
        stays registered with no events (a caller thread reads it for a moment)."""
        events = (READ if on_read else 0) | (WRITE if on_write else 0)
        try:
            fd = sock.fileno()
        except (OSError, ValueError):
            return
        if fd >= 0:
            self.set_events(fd, events, (on_read, on_write), park)

    def set_events(self, fd: int, events: int, data: Tuple[Any, Any], park: bool = False) -> None:
        """``watch`` by fd, with the callbacks (on_read, on_write) of which ``events`` says which
        are wanted (a connection passes the same tuple each time: nothing to build per call)."""
        with self._watching:
            current = self._watched.get(fd)
            if events == 0 and not (park and _EPOLL):
                if current is not None:
                    del self._watched[fd]
                    self._unregister(fd)
                return
            if current is None:
                self._register(fd, events, data)
            elif current[0] != events:
                self._modify(fd, events, data)
            elif current[1] is not data and not _EPOLL:
                self._selector.modify(fd, events, data)
            self._watched[fd] = (events, data)

    def forget(self, sock) -> None:
        try:
            fd = sock.fileno()
        except (OSError, ValueError):
            return
        with self._watching:
            if self._watched.pop(fd, None) is not None:
                try:
                    self._unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass

    def _register(self, fd: int, events: int, data: Any) -> None:
        if _EPOLL:
            self._epoll.register(fd, _epoll_mask(events))
        else:
            self._selector.register(fd, events, data)

    def _modify(self, fd: int, events: int, data: Any) -> None:
        if _EPOLL:
            self._epoll.modify(fd, _epoll_mask(events))
        elif events:
            self._selector.modify(fd, events, data)

    def _unregister(self, fd: int) -> None:
        if _EPOLL:
            self._epoll.unregister(fd)
        else:
            self._selector.unregister(fd)

    def stop(self) -> None:
        self._stopping = True
        self.call_soon(lambda: None)

    def _ready(self) -> list:
        """(events, data) of each socket ready, the wake-up socket's data being None."""
        timeout = self._timeout()
        if not _EPOLL:
            return [(mask, key.data) for key, mask in self._selector.select(timeout)]
        ready = []
        watched = self._watched
        for fd, happened in self._epoll.poll(timeout):
            entry = watched.get(fd)
            if entry is None:
                continue
            events, data = entry
            mask = 0
            if happened & _EPOLL_READ:
                mask |= READ
            if happened & _EPOLL_WRITE:
                mask |= WRITE
            mask &= events
            if mask:
                ready.append((mask, data))
        return ready

    def _run(self) -> None:
        next_tick = time.monotonic() + TICK_S
        while not self._stopping:
            try:
                events = self._ready()
            except OSError:  # a socket closed under us by another thread: look again
                events = []
            for mask, data in events:
                if data is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                on_read, on_write = data
                try:
                    if mask & WRITE and on_write:
                        on_write()
                    if mask & READ and on_read:
                        on_read()
                except Exception:  # a bug in one connection's handling must not stop the others
                    import traceback

                    traceback.print_exc()
            if self._pushes:
                self._run_pushes()
            if self._parks:
                self._run_parks()
            while self._calls:
                fn = self._calls.popleft()
                try:
                    fn()
                except Exception:
                    import traceback

                    traceback.print_exc()
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + TICK_S
                for fn in list(self._ticks):
                    try:
                        fn(now)
                    except Exception:
                        import traceback

                        traceback.print_exc()
        if _EPOLL:
            self._epoll.close()
        else:
            self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


if _EPOLL:
    _EPOLL_READ = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR | select.EPOLLPRI
    _EPOLL_WRITE = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR


def _epoll_mask(events: int) -> int:
    return (select.EPOLLIN if events & READ else 0) | (select.EPOLLOUT if events & WRITE else 0)


_shared: Optional[IoLoop] = None
_shared_lock = threading.Lock()


def shared_loop() -> IoLoop:
    """The process's loop, started on first use (and again after a fork)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.thread.is_alive():
            _shared = IoLoop()
        return _shared
