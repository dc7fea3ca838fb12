"""Runtime: one process's labc, which builds the parts and delegates to them. ``labc.call`` and the
other functions of the package use one made on first use; ``labc.Runtime(...)`` makes another
(as a context manager it closes itself)."""

from __future__ import annotations

import asyncio
import contextlib
import atexit
import inspect
import os
import signal
import sys
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional

from .calls import Calls
from .config import Config, load_config
from .decorators import REGISTER_MARK, SUBSCRIBE_MARK, marks, route_name
from .errors import ClosedError, LabcError
from .io_loop import shared_loop
from .publications import Publications
from .router_link import RouterLink
from .server import Server
from .server_links import ServerLinks

_live: "weakref.WeakSet[Runtime]" = weakref.WeakSet()


class Runtime:
    def __init__(self, config: Optional[Dict[str, Any]] = None, *, state: Optional[str] = None, threads: Optional[int] = None) -> None:
        self.config: Config = load_config(config)
        self.loop = shared_loop()
        self.identity: Dict[str, Any] = {"id": f"py-{os.getpid()}-{os.urandom(4).hex()}"}
        state = state or os.environ.get("LABC_STATE")
        if state:
            self.identity["state"] = state
        self.threads = threads or int(self.config["server.threads"])
        self.server: Optional[Server] = None
        self.link = RouterLink(self.loop, self.config, self.identity, lambda: self.server)
        self.links = ServerLinks(self.link, self.identity)
        self.calls = Calls(self)
        self.publications = Publications(self)
        self._helpers: Optional[ThreadPoolExecutor] = None
        self._aio: Optional[asyncio.AbstractEventLoop] = None
        self._pending_functions: List[tuple] = []
        self._pending_handlers: List[tuple] = []
        self._deferring = False
        self._closed = False
        self._stopped = threading.Event()
        self._lock = threading.RLock()
        _live.add(self)

    # --- calling ------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._closed:
            raise ClosedError("labc was used after close()")

    def call(self, name: str, *args: Any) -> Any:
        if self._closed:
            raise ClosedError("labc was used after close()")
        return self.calls.call_plain(name, args)

    def call_with(self, name: str, args: List[Any] = (), *, timeout: Optional[float] = None, scope: Optional[str] = None,
                  host: Optional[str] = None, state: Optional[str] = None) -> Any:
        self._open()
        return self.calls.call(name, list(args), timeout, scope, host, state)

    def stream(self, name: str, *args: Any, window: int = 64, timeout: Optional[float] = None, host: Optional[str] = None):
        self._open()
        return self.calls.stream(name, list(args), timeout, None, host, None, window)

    def call_all(self, name: str, *args: Any, timeout: Optional[float] = None, scope: Optional[str] = None) -> List[dict]:
        self._open()
        return self.calls.call_all(name, list(args), timeout, scope)

    def publish(self, topic: str, *args: Any) -> int:
        if self._closed:
            raise ClosedError("labc was used after close()")
        return self.publications.publish_plain(topic, args)

    def reqpub(self, topic: str, *args: Any, timeout: Optional[float] = None) -> Any:
        self._open()
        return self.publications.reqpub(topic, list(args), timeout)

    def hosts(self) -> List[dict]:
        """The hosts this host's router knows (as ``labc hosts --json`` prints them)."""
        self._open()
        self.link.discovered()
        return self.link.ask_router("labc.hosts")

    def servers(self) -> List[dict]:
        """Every server of the pool, as ``labc ls --json`` lists them."""
        self._open()
        self.link.sync()
        with self.link.pool.lock:
            return [dict(id=s.id, host=s.host, hostId=s.host_id, address=s.address, port=s.port, pid=s.pid, state=s.state,
                         suspect=s.suspect, functions=list(s.functions.values()), topics=sorted(s.topics))
                    for s in self.link.pool.servers.values()]

    # --- serving ------------------------------------------------------------------------------

    def _ensure_server(self) -> Server:
        with self._lock:
            if self.server is None:
                self.server = Server(self, self.threads)
            return self.server

    def add_function(self, fn: Callable, options: Dict[str, Any], name: Optional[str] = None, serial_key: Any = None) -> None:
        """Offers ``fn`` now (as TypeScript's ``register(fn)``): the process starts serving."""
        self._open()
        name = name or options.get("name") or fn.__name__
        exclusive = serial_key if serial_key is not None else (fn if options.get("exclusive") else None)
        if self._deferring:
            self._pending_functions.append((name, fn, options, exclusive))
            return
        entry = self._ensure_server().add_function(name, fn, options, exclusive)
        self._offer({"functions": [entry], "topics": []})

    def add_subscriber(self, pattern: str, fn: Callable, group: Optional[str], label: Optional[str] = None) -> None:
        """Subscribes ``fn`` now (as TypeScript's ``subscribe(fn, pattern)``)."""
        self._open()
        label = label or getattr(fn, "__qualname__", repr(fn))
        if self._deferring:
            self._pending_handlers.append((pattern, fn, group, label))
            return
        key = self._ensure_server().add_handler(pattern, fn, group, label)
        if key:
            self._offer({"functions": [], "topics": [key]})

    def _offer(self, offer: Dict[str, Any]) -> None:
        from .server import offered

        offer["functions"] = [entry for entry in offer["functions"] if offered(entry)]
        if self.link.registered:
            self.link.announce(offer)
        else:
            self.link.register()

    @contextlib.contextmanager
    def deferred(self):
        """Decorated functions are kept, not served, until ``serve()``: ``python -m labc serve
        file.py`` imports a file (or lists what it offers) this way."""
        self._deferring = True
        try:
            yield self
        finally:
            self._deferring = False

    def serve(self, *instances: Any, block: bool = True, exclusive: bool = False) -> "Runtime":
        """Serves what was registered, and each instance's decorated methods (under the class's
        route name); with ``block`` (the default) until Ctrl-C or SIGTERM, then stops without
        losing a call."""
        self._open()
        server = self._ensure_server()
        for name, fn, options, key in self._pending_functions:
            server.add_function(name, fn, options, key)
        for pattern, fn, group, label in self._pending_handlers:
            server.add_handler(pattern, fn, group, label)
        self._pending_functions.clear()
        self._pending_handlers.clear()
        before = server.offer()
        for instance in instances:
            self._serve_instance(server, instance, exclusive)
        if self.link.registered:
            after = server.offer()
            known = {entry["name"] for entry in before["functions"]}
            self.link.announce({"functions": [e for e in after["functions"] if e["name"] not in known],
                                "topics": [t for t in after["topics"] if t not in before["topics"]]})
        else:
            self.link.register()
        if block:
            self.wait()
        return self

    def _serve_instance(self, server: Server, instance: Any, exclusive: bool) -> None:
        cls = type(instance)
        route = route_name(cls.__name__)
        found = False
        for attribute in dir(cls):
            method = getattr(cls, attribute, None)
            target = getattr(method, "__func__", method)
            if not callable(target):
                continue
            for options in marks(target, REGISTER_MARK):
                found = True
                key = instance if (exclusive or options.get("exclusive")) else None
                name = options.get("name") or attribute
                bound = getattr(instance, attribute)
                # As on the TypeScript side: `power_supply.set_voltage`, and `set_voltage` too
                # unless this process serves that name already.
                server.add_function(f"{route}.{name}", bound, options, key)
                if name in server.functions:
                    self.warn(f'"{name}" is already served by this process; {route}.{name} reaches {cls.__name__}.{attribute}')
                else:
                    server.add_function(name, bound, options, key)
            for options in marks(target, SUBSCRIBE_MARK):
                found = True
                server.add_handler(options["pattern"], getattr(instance, attribute), options.get("group"), f"{cls.__name__}.{attribute}")
        if not found:
            from .errors import BadArgumentsError

            raise BadArgumentsError(f"{cls.__name__} has no method decorated with @labc.register or @labc.subscribe")

    def wait(self) -> None:
        """Blocks until Ctrl-C or SIGTERM (or ``stop()``), then stops serving without losing a call."""
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, lambda *_: self._stopped.set())
            try:
                while not self._stopped.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            finally:
                signal.signal(signal.SIGTERM, previous)
        else:
            self._stopped.wait()
        self.close()

    def stop(self) -> None:
        """Ends ``serve()``'s wait (from another thread or a served function)."""
        self._stopped.set()

    # --- helpers for the parts ----------------------------------------------------------------

    def background(self, fn: Callable, *args: Any) -> Future:
        with self._lock:
            if self._helpers is None:
                self._helpers = ThreadPoolExecutor(32, thread_name_prefix="labc fan-out")
        return self._helpers.submit(fn, *args)

    def run_coroutine(self, coroutine: Any) -> Any:
        """Runs a served ``async def`` on labc's event loop thread (or the one ``labc.aio`` serves on)."""
        with self._lock:
            if self._aio is None or self._aio.is_closed():
                self._aio = asyncio.new_event_loop()
                threading.Thread(target=self._aio.run_forever, name="labc asyncio", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._aio).result()

    def use_event_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._aio = loop

    def warn(self, message: str) -> None:
        # A message may quote what a peer sent (a topic, a name): never its raw control bytes.
        from .trips import escape_controls

        print(f"labc: {escape_controls(message)}", file=sys.stderr, flush=True)

    def debug(self, message: str) -> None:
        if os.environ.get("LABC_DEBUG"):
            print(f"labc: {message}", file=sys.stderr, flush=True)

    # --- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stops serving (withdraw, tell callers, answer what runs), flushes what was published,
        and closes every connection. Using labc afterwards raises ClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stopped.set()
        server = self.server
        if server is not None:
            try:
                self.link.withdraw(list(server.functions), [k for k in server.offer()["topics"]], sync=True)
            except LabcError:
                pass
            server.drain(float(self.config["server.drain_timeout"]))
        self.links.close()
        self.link.close()
        if server is not None:
            server.close()
        if self._helpers is not None:
            self._helpers.shutdown(wait=False)

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@atexit.register
def _close_all() -> None:
    # An interpreter that exits flushes what was published and stops serving cleanly.
    for runtime in list(_live):
        try:
            runtime.close()
        except Exception:
            pass
