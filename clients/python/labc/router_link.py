"""This process's link to its host's router: the welcome, the pool replica kept current from the
router's notices, requests passed through the routers, and the lifeline of a server (registered
again, with a router started again, when the router goes away).

The router is the TypeScript one (``labc router``). When none runs, the first process starts it
with the ``labc`` command of the host, as the TypeScript side does.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import subprocess
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from .config import Config, state_dir
from .connection import Connection
from .dial import dial
from .rotation import keys_of
from .errors import ClosedError, ConnectionLostError, LabcError, NotTrustedError, RouterUnavailableError
from .frames import Kind
from .io_loop import IoLoop
from .pool import Pool
from .waiter import Waiter

#: How long a process waits for a router to answer, counting the time to start one.
REACH_ROUTER_S = 5.0


def router_command() -> Optional[List[str]]:
    """How to run ``labc router`` here: ``$LABC_COMMAND`` (a command line), else ``labc`` on the PATH."""
    given = os.environ.get("LABC_COMMAND")
    if given:
        return shlex.split(given)
    found = shutil.which("labc")
    return [found] if found else None


def start_router(config: Config) -> None:
    """Starts the host's router in the background, detached: it outlives this process."""
    command = router_command()
    address = f"{config['router.address']}:{config['router.port']}"
    if command is None:
        raise RouterUnavailableError(
            f"no labc router answers on {address}, and the labc command that starts one is not installed here: npm install -g labc (it needs Node.js 20.6 or newer)",
            data={"address": address},
        )
    folder = state_dir()
    os.makedirs(folder, exist_ok=True)
    log = open(os.path.join(folder, f"router-{config['router.port']}.log"), "ab")
    env = dict(os.environ)
    # The secret goes by environment, never by argument (others read arguments in `ps`).
    keys = keys_of(config)
    if keys is not None:
        # The secret in force: the next one, once a rotation's window ended.
        env["LABC_NETWORK_SECRET"] = keys.secret_text()
    linger = config["router.linger"]
    linger_text = str(int(linger)) if float(linger).is_integer() else str(linger)
    try:
        subprocess.Popen(
            command + ["router", "--port", str(config["router.port"]), "--linger", linger_text],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True, close_fds=True,
        )
    except OSError as error:
        # A command that is not there (LABC_COMMAND naming a path that does not exist) is the
        # same case as no labc installed: say how to install it.
        hint = ": npm install -g labc (it needs Node.js 20 or newer)" if isinstance(error, FileNotFoundError) else ""
        raise RouterUnavailableError(f"no labc router answers on {address}, and starting one with {' '.join(command)} failed: {error}{hint}", data={"address": address}) from error
    finally:
        log.close()


def reach_router(config: Config):
    """A socket to the host's router, starting one when nobody listens on the root port."""
    address, port = config["router.address"], config["router.port"]
    deadline = time.monotonic() + REACH_ROUTER_S
    started = False
    while True:
        try:
            return dial(address, port, 1.0, keys_of(config))
        except NotTrustedError:
            raise
        except ConnectionRefusedError as error:
            if time.monotonic() > deadline:
                raise RouterUnavailableError(f"no labc router answers on {address}:{port} (one was started; its log is {state_dir()}/router-{port}.log)", data={"address": f"{address}:{port}"}) from error
            if not started:
                # Every server of a host may notice a lost router at once: a random pause lets
                # the first one's router take the port; the others' find it taken and exit.
                time.sleep(random.random() * 0.1)
                started = True
                try:
                    return dial(address, port, 1.0, keys_of(config))
                except ConnectionRefusedError:
                    start_router(config)
            time.sleep(0.05)
        except OSError as error:
            raise RouterUnavailableError(f"no labc router answers on {address}:{port}: {error}", data={"address": f"{address}:{port}"}) from error


class RouterLink:
    """The router connection of one process. ``ready()`` connects (once); notices update ``pool``."""

    def __init__(self, loop: IoLoop, config: Config, identity: Dict[str, Any], server: Callable[[], Any]) -> None:
        self.loop = loop
        self.config = config
        self.identity = identity
        self.server = server
        self.pool = Pool()
        self.welcome: Dict[str, Any] = {}
        self.connection: Optional[Connection] = None
        self._lock = threading.Lock()
        self._settled_at = 0.0
        self._closed = False
        self._registered = False
        self._got_pool = threading.Event()
        self.on_death: List[Callable[[str], None]] = []

    @property
    def label(self) -> str:
        return f"router at {self.config['router.address']}:{self.config['router.port']}"

    @property
    def host_id(self) -> str:
        return self.welcome.get("hostId", "")

    @property
    def host(self) -> str:
        return self.welcome.get("host", "")

    def timeout(self) -> float:
        return float(self.config["call.timeout"])

    def ready(self) -> Connection:
        """The connection, after hello and pool; connects when there is none."""
        connection = self.connection
        if connection is not None and not connection.closed:
            return connection
        with self._lock:
            if self._closed:
                raise ClosedError("labc was closed")
            if self.connection is not None and not self.connection.closed:
                return self.connection
            for attempt in (1, 2):
                try:
                    self.connection = self._join()
                    return self.connection
                except ConnectionLostError:
                    # A router lingering out just as we arrived closed on us: the next one starts.
                    if attempt == 2:
                        raise
                    time.sleep(0.05)
        raise AssertionError("unreachable")

    def _hello(self) -> Dict[str, Any]:
        server = self.server()
        hello = {"v": 1, "role": "server" if server else "client", "id": self.identity["id"], "pid": os.getpid(),
                 "host": self.welcome.get("host", ""), "hostId": self.welcome.get("hostId", ""), "watch": True}
        if self.identity.get("state"):
            hello["state"] = self.identity["state"]
        if self.config["network.realm"]:
            hello["realm"] = self.config["network.realm"]
        if server:
            hello["port"] = server.port
        return hello

    def _join(self) -> Connection:
        sock = reach_router(self.config)
        self._got_pool.clear()
        connection = Connection(self.loop, sock, self.label, self._handle, self.config["wire.max_frame_size"])
        connection.on_close.append(self._lost)
        try:
            self.welcome = connection.ask(Kind.HELLO, self._hello(), "hello", self.timeout()) or {}
        except LabcError:
            connection.close()
            raise
        self._settled_at = time.monotonic() + float(self.welcome.get("discoveringMs") or 0) / 1000
        if not self._got_pool.wait(self.timeout()) or connection.closed:
            connection.close()
            raise ConnectionLostError(f"{self.label} closed before it sent its pool", data={"target": self.label})
        self._registered = self.server() is not None
        if self._registered:
            self._announce(connection, self.server().offer())
        return connection

    def _handle(self, connection: Connection, kind: int, flags: int, id: int, body: Dict[str, Any]) -> None:
        if kind == Kind.POOL:
            self.pool.replace(body.get("servers") or [])
            self._got_pool.set()
        elif kind == Kind.ANNOUNCE:
            self.pool.apply_announce(body)
        elif kind == Kind.WITHDRAW:
            self.pool.apply_withdraw(body)
        elif kind == Kind.DEATH:
            gone = body.get("server")
            if isinstance(gone, str):
                self.pool.remove(gone)
                for callback in self.on_death:
                    callback(gone)
        elif kind == Kind.SUSPECT:
            if isinstance(body.get("server"), str):
                self.pool.set_suspect(body["server"], body.get("suspect") is True)
        else:
            server = self.server()
            if kind == Kind.REQ and body.get("fn") == "labc.metrics" and server is None:
                connection.send(Kind.EXC, id, {"name": "NoSuchFunctionError", "code": "LABC_NO_SUCH_FUNCTION", "message": "no metrics in this process"})
            elif server is not None:
                server.handle(connection, kind, flags, id, body, routed=True)

    def _lost(self, connection: Connection) -> None:
        self._got_pool.set()
        if self.connection is not connection:
            return
        self.connection = None
        self._registered = False
        if self._closed or self.server() is None:
            return
        # A serving process starts the router again and registers; the replica is kept, so
        # calls go straight to servers meanwhile.
        threading.Thread(target=self._reconnect, name="labc router again", daemon=True).start()

    def _reconnect(self) -> None:
        attempt = 0
        while not self._closed and self.connection is None:
            try:
                self.ready()
                return
            except LabcError:
                time.sleep(min(1.0, 0.1 * 2 ** attempt))
                attempt += 1

    # --- what a process asks of its router ----------------------------------------------------

    @property
    def registered(self) -> bool:
        """The router knows this process as a server (and what it offered so far)."""
        return self._registered and self.connection is not None and not self.connection.closed

    def discovering_s(self) -> float:
        if not self._settled_at:
            return 0.0
        left = self._settled_at - time.monotonic()
        if left <= 0:
            self._settled_at = 0.0
        return max(0.0, left)

    def discovered(self) -> None:
        """Waits until a router started a moment ago has had its chance to find every host."""
        self.ready()
        wait = self.discovering_s()
        if wait > 0:
            time.sleep(wait)
            self.sync()

    def sync(self) -> None:
        """Waits until every notice the router sent before now is applied here."""
        connection = self.ready()
        connection.ask(Kind.PING, {}, "sync", self.timeout())

    def register(self) -> None:
        connection = self.ready()
        if self._registered:
            return
        self._registered = True
        connection.ask(Kind.HELLO, self._hello(), "hello", self.timeout())
        self._announce(connection, self.server().offer())

    def _announce(self, connection: Connection, offer: Dict[str, Any]) -> None:
        if offer.get("functions") or offer.get("topics"):
            connection.ask(Kind.ANNOUNCE, offer, "announce", self.timeout())

    def announce(self, offer: Dict[str, Any]) -> None:
        if self._registered and self.connection is not None:
            self._announce(self.connection, offer)

    def withdraw(self, functions: List[str], topics: List[str], sync: bool = False) -> None:
        if self._registered and self.connection is not None:
            body: Dict[str, Any] = {"functions": functions, "topics": topics}
            if sync:
                body["sync"] = True
            self.connection.ask(Kind.WITHDRAW, body, "withdraw", self.timeout())

    def ask_router(self, fn: str, args: Optional[list] = None) -> Any:
        """Calls one of the router's own functions (labc.hosts, labc.metrics...)."""
        return self.ready().ask(Kind.REQ, {"fn": fn, "args": args or []}, fn, self.timeout())

    def forward(self, target: str, body: Dict[str, Any], waiter: Waiter) -> tuple:
        """Sends a request for server ``target`` through the routers; returns (connection, id)."""
        connection = self.ready()
        routed = dict(body)
        routed["target"] = target
        return connection, connection.request(Kind.REQ, routed, waiter)

    def forward_publication(self, body: Dict[str, Any]) -> None:
        self.ready().send(Kind.PUB, body)

    def close(self) -> None:
        self._closed = True
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close_after_flush()
