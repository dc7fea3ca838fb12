"""How a server's calls share its thread pool: taking turns between the addresses callers come
from, then between the connections of an address (``Turns``)."""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Deque, Dict, Optional, Tuple


class Turns:
    """Runs calls on the pool's threads taking turns, first between the addresses callers come
    from, then between the connections of an address: callers filling the pool with slow calls
    (limits.in_flight on each of many connections) make another's next call wait for a thread
    to free up and its address's turn, not for all their calls. The lifeline (routed calls) is
    one connection of the router's address."""

    def __init__(self, executor: ThreadPoolExecutor, threads: int) -> None:
        self.executor, self.threads = executor, threads
        self._lock = threading.Lock()
        #: Per address, the connections with calls waiting (in turn order), each with its calls.
        self._waiting: Dict[str, Dict[int, Deque[Tuple[Callable, tuple]]]] = {}
        self._addresses: Deque[str] = deque()  # those with calls waiting, in turn order
        self._busy = 0

    def submit(self, address: str, key: int, fn: Callable, *args: Any) -> None:
        with self._lock:
            connections = self._waiting.get(address)
            if connections is None:
                connections = self._waiting[address] = {}
                self._addresses.append(address)
            calls = connections.get(key)
            if calls is None:
                calls = connections[key] = deque()
            calls.append((fn, args))
            if self._busy >= self.threads:
                return
            self._busy += 1
        self.executor.submit(self._work)

    def _next(self) -> Optional[Tuple[Callable, tuple]]:
        if not self._addresses:
            return None
        address = self._addresses.popleft()
        connections = self._waiting[address]
        key = next(iter(connections))
        calls = connections.pop(key)
        call = calls.popleft()
        if calls:
            connections[key] = calls  # to the end of its address's line
        if connections:
            self._addresses.append(address)
        else:
            del self._waiting[address]
        return call

    def _work(self) -> None:
        while True:
            with self._lock:
                call = self._next()
                if call is None:
                    self._busy -= 1
                    return
            fn, args = call
            try:
                fn(*args)
            except Exception:  # a call's own errors are answered in fn; this is ours
                import traceback

                traceback.print_exc()
            except BaseException:  # SystemExit in a served function: answered in fn; the thread serves on
                pass
