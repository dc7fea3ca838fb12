"""The server of a Python process: its own port, its functions and subscribers, run on a thread pool.

Requests arrive on connections callers open to its port and, passed on by the routers, on its
lifeline to the router (``handle``). Each call runs on a worker thread with ``labc.context()``
set; an exclusive function's calls run one at a time, in arrival order, on a thread of their
instrument's own; publications run in the order they came, on one thread, and a connection
whose publications pile up is read no further until they are done (the publisher then waits).
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional

from .connection import Connection, PartialBudget
from .dial import listen
from .errors import BadArgumentsError
from .in_order import InOrder
from .local_function import Local, exported, offered
from .server_admission import ServerAdmission
from .server_calls import ServerCalls, id_of
from .server_dispatch import ServerDispatch
from .server_publications import RESUME_AT, Handler, ServerPublications
from .server_stopping import ServerStopping
from .signature import params_of
from .topics import check_pattern, subscription_key
from .turns import Turns
from .waiter import Waiter

__all__ = ["Server", "Local", "Handler", "offered", "exported"]


class Server(ServerDispatch, ServerAdmission, ServerCalls, ServerPublications, ServerStopping):
    """A process's server; its parts: server_dispatch.py (where a message goes), server_admission.py
    (which connections it takes), server_calls.py (running calls), server_publications.py
    (delivering publications), server_stopping.py (drain and close). The state they share is
    set here."""

    def __init__(self, runtime: Any, threads: int) -> None:
        self.rt = runtime
        self.config = runtime.config
        self.loop = runtime.loop
        self.id: str = runtime.identity["id"]
        self.functions: Dict[str, Local] = {}
        self.handlers: List[Handler] = []
        self._group_turns: Dict[str, int] = {}
        self.executor = ThreadPoolExecutor(max(1, threads), thread_name_prefix="labc call")
        self._turns = Turns(self.executor, max(1, threads))
        self._serial: Dict[int, ThreadPoolExecutor] = {}
        self._publications = InOrder("labc publications")
        #: (Connection.pub_marks) The subscribers outside groups of the topics last published
        #: here, by topic (server_publications.py).
        self._plain_subscribers: Dict[str, tuple] = {}
        self._pause_bytes = int(self.config["limits.unsent"])
        #: The calls of each connection not answered yet, by request id (a negative one for an id of 0).
        self._running: Dict[int, Dict[int, Any]] = {}
        self._unanswered = itertools.count(1)
        #: Per connection, the bytes of the requests of its calls not answered yet: by slot, and their sum.
        self._call_bytes: Dict[int, Dict[int, int]] = {}
        self._call_total: Counter = Counter()
        self._lock = threading.Lock()
        self.connections: Dict[int, Connection] = {}
        #: Connections that have not said hello yet, by address, oldest first: past
        #: limits.connections_per_address the oldest is closed (as the TypeScript side does), so a
        #: flood of idle connections is cut and callers that say hello are never shut out.
        self._unproved: Dict[str, Dict[int, Connection]] = {}
        #: TLS handshakes under way, by address (each on a thread of its own): bounded too.
        self._handshaking: Dict[str, Dict[int, socket.socket]] = {}
        self._partial = PartialBudget(int(self.config["limits.partial_frames"]))
        self.leaving = False
        self._told: List[Waiter] = []
        self.listener: Optional[socket.socket] = listen(self.config["server.address"])
        self.port: int = self.listener.getsockname()[1]
        self.listener.setblocking(False)
        self.loop.call_soon(lambda: self.loop.watch(self.listener, self._accept, None))
        self.loop.every_tick(self._check_timeouts)

    # --- what it offers ------------------------------------------------------------------------

    def add_function(self, name: str, fn: Callable, options: Dict[str, Any], serial_key: Any = None) -> Dict[str, Any]:
        if name in self.functions:
            raise BadArgumentsError(f'function "{name}" is already registered in this server')
        entry: Dict[str, Any] = {"name": name, "scope": options.get("scope", "network"), "visibility": options.get("visibility", "public")}
        if options.get("idempotent"):
            entry["idempotent"] = True
        params = params_of(fn)
        if params is not None:
            entry["params"] = params
        serial = None
        if serial_key is not None:
            key = id(serial_key)
            serial = self._serial.get(key)
            if serial is None:
                serial = self._serial[key] = ThreadPoolExecutor(1, thread_name_prefix=f"labc {name} one at a time")
        self.functions[name] = Local(fn, entry, serial)
        return entry

    def add_handler(self, pattern: str, fn: Callable, group: Optional[str], label: str) -> Optional[str]:
        """Adds a subscriber; returns the subscription key when it is new to this server."""
        check_pattern(pattern)
        key = subscription_key(pattern, group)
        new = all(subscription_key(h.pattern, h.group) != key for h in self.handlers)
        self.handlers.append(Handler(pattern, fn, group, label))
        self._plain_subscribers = {}  # matched again (a match under way keeps the old one)
        return key if new else None

    def offer(self) -> Dict[str, Any]:
        keys: List[str] = []
        for handler in self.handlers:
            key = subscription_key(handler.pattern, handler.group)
            if key not in keys:
                keys.append(key)
        return {"functions": [local.entry for local in self.functions.values() if offered(local.entry)], "topics": keys}

    # --- reading a paused connection again ----------------------------------------------------
    # Here, not with the calls or the publications: what a connection holds of both decides.

    def _may_resume(self, connection: Connection) -> None:
        """Resumes reading a connection paused when what it holds (calls, publications) is low again."""
        if not connection.paused:
            return  # as below, whatever it holds; without the lock, after every publication
        key = id_of(connection)
        pubs = connection.pub_marks
        try:
            pubs_under = not pubs or (len(pubs) <= RESUME_AT and pubs[-1] - pubs[0] <= self._pause_bytes // 4)
        except IndexError:  # emptied meanwhile by the publications' thread
            pubs_under = True
        with self._lock:
            under = pubs_under and self._call_total.get(key, 0) <= self._pause_bytes // 4
        if under and connection.paused and not connection.closed:
            self.loop.call_soon(connection.resume)
