"""One background thread that reads every socket of the process and writes what could not go at once.

Lab scripts and notebooks call labc from ordinary (blocking) code: a caller's thread writes its
frame itself and waits on a lock; this thread reads the answers and releases the waiters. It is a
daemon thread, so a Jupyter kernel or a script never hangs on it, and a selector (not a thread
per connection) keeps a server that many peers dial, or a flood of idle connections, at one thread.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections import deque
from typing import Callable, Deque, Optional

#: How often timers (hello and frame timeouts, flush waits) are checked.
TICK_S = 0.25


class IoLoop:
    def __init__(self, name: str = "labc io") -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: Deque[Callable[[], None]] = deque()
        # Guards the selector's table: a caller thread reading its own answer (Connection.wait)
        # drops and restores its socket's read interest itself, while the loop selects.
        self._watching = threading.Lock()
        self._watched: dict = {}
        self._ticks: list = []
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

    def every_tick(self, fn: Callable[[float], None]) -> None:
        """Runs ``fn(now)`` on the loop's thread about every TICK_S (timeouts)."""
        self.call_soon(lambda: self._ticks.append(fn))

    def watch(self, sock, on_read: Optional[Callable[[], None]], on_write: Optional[Callable[[], None]]) -> None:
        """Sets what the loop waits for on ``sock`` (from any thread: epoll takes changes while
        the loop waits in it)."""
        events = (selectors.EVENT_READ if on_read else 0) | (selectors.EVENT_WRITE if on_write else 0)
        try:
            fd = sock.fileno()
        except (OSError, ValueError):
            return
        if fd < 0:
            return
        with self._watching:
            # Our own table, not get_key: asked about a socket it does not hold, get_key formats
            # the socket's repr for its KeyError (two system calls).
            current = self._watched.get(fd)
            if events == 0:
                if current is not None:
                    del self._watched[fd]
                    self._selector.unregister(fd)
                return
            data = (on_read, on_write)
            if current is None:
                self._selector.register(fd, events, data)
            elif current != (events, data):
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
                    self._selector.unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass

    def stop(self) -> None:
        self._stopping = True
        self.call_soon(lambda: None)

    def _run(self) -> None:
        next_tick = time.monotonic() + TICK_S
        while not self._stopping:
            try:
                events = self._selector.select(TICK_S)
            except OSError:  # a socket closed under us by another thread: look again
                events = []
            for key, mask in events:
                if key.data is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                on_read, on_write = key.data
                try:
                    if mask & selectors.EVENT_WRITE and on_write:
                        on_write()
                    if mask & selectors.EVENT_READ and on_read:
                        on_read()
                except Exception:  # a bug in one connection's handling must not stop the others
                    import traceback

                    traceback.print_exc()
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
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


_shared: Optional[IoLoop] = None
_shared_lock = threading.Lock()


def shared_loop() -> IoLoop:
    """The process's loop, started on first use (and again after a fork)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.thread.is_alive():
            _shared = IoLoop()
        return _shared
