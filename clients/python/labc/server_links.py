"""How this process reaches each server it calls: one connection per server, made on first use, or
through the routers when the server's port cannot be reached from here (or it is on another site).
The one place that decides; callers send on what it hands out without asking how.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, Optional, Set, Tuple

from .connection import Connection
from . import local_proof, tls
from .dial import dial
from .rotation import keys_of
from .errors import ConnectionLostError, LabcError, NotTrustedError
from .frames import Kind
from .pool import PoolServer
from .router_link import RouterLink
from .waiter import Waiter

#: How long to try a server's own port before going through the routers.
DIAL_TIMEOUT_S = 1.0


class Route:
    """Sends to one server: on a connection of our own, or on the router link with a ``target``."""

    __slots__ = ("connection", "target")

    def __init__(self, connection: Connection, target: Optional[str]) -> None:
        self.connection = connection
        self.target = target

    def request(self, body: Dict[str, Any], waiter: Waiter) -> int:
        if self.target is not None:
            body = dict(body)
            body["target"] = self.target
        return self.connection.request(Kind.REQ, body, waiter)

    def cancel(self, id: int) -> None:
        self.connection.forget(id)
        try:
            self.connection.send(Kind.CANCEL, id, {})
        except LabcError:
            pass

    def credit(self, id: int, n: int) -> None:
        self.connection.send(Kind.CREDIT, id, {"n": n})

    def publish(self, body: Dict[str, Any]) -> Connection:
        if self.target is not None:
            body = dict(body)
            body["target"] = self.target
        self.connection.send(Kind.PUB, body)
        return self.connection


class ServerLinks:
    def __init__(self, link: RouterLink, identity: Dict[str, Any]) -> None:
        self.link = link
        self.identity = identity
        self._open: Dict[str, Connection] = {}
        self._routed: Set[str] = set()
        self._leaving: Set[int] = set()
        self._lock = threading.Lock()
        self._dialing: Dict[str, threading.Lock] = {}
        #: Counts what changes a route (a connection opened, closed or left, a server routed):
        #: a publication's plan (publications.py) holds while it is the same.
        self.changes = 0
        link.on_death.append(self.drop)

    def route(self, server: PoolServer) -> Route:
        connection = self._open.get(server.id)
        if connection is not None and not connection.closed and id(connection) not in self._leaving:
            return Route(connection, None)
        if server.gateway is not None or server.id in self._routed:
            return Route(self.link.ready(), server.id)
        connection = self._dial(server)
        if connection is None:
            return Route(self.link.ready(), server.id)
        return Route(connection, None)

    def current(self, server: PoolServer) -> Optional[Connection]:
        """The connection of our own to ``server`` that ``route`` would hand out now, if any."""
        connection = self._open.get(server.id)
        if connection is not None and id(connection) not in self._leaving:
            return connection
        return None

    def ready_route(self, server: PoolServer) -> Optional[Route]:
        """The route to ``server`` when there is one without dialing or connecting to the router
        (the asyncio face sends on it from its event loop); None when ``route`` would have to."""
        connection = self._open.get(server.id)
        if connection is not None and not connection.closed and id(connection) not in self._leaving:
            return Route(connection, None)
        if server.gateway is not None or server.id in self._routed:
            link = self.link.connection
            if link is not None and not link.closed:
                return Route(link, server.id)
        return None

    def _dial(self, server: PoolServer) -> Optional[Connection]:
        with self._lock:
            gate = self._dialing.setdefault(server.id, threading.Lock())
        with gate:
            known = self._open.get(server.id)
            if known is not None and not known.closed and id(known) not in self._leaving:
                return known
            config = self.link.config
            keys = keys_of(config)
            if keys is not None and not local_proof.is_loopback(server.address) and tls.supported() is not None:
                # A server of another host takes TLS, which this Python cannot do (before 3.13):
                # the routers, which reach it over TLS, pass what is for it on.
                self._routed.add(server.id)
                self.changes += 1
                return None
            try:
                sock = dial(server.address, server.port, DIAL_TIMEOUT_S, keys)
            except NotTrustedError:
                raise
            except OSError:
                # Its port is not reachable from here (another network, a firewall): the routers
                # pass what is for it on, over its lifeline.
                self._routed.add(server.id)
                self.changes += 1
                return None
            connection = Connection(self.link.loop, sock, server.describe(), self._handle, config["wire.max_frame_size"],
                                    config["limits.queued"], config["limits.unsent"])
            hello = {"v": 1, "role": "client", "id": self.identity["id"], "pid": os.getpid(), "host": self.link.host, "hostId": self.link.host_id}
            connection.send(Kind.HELLO, 0, hello)
            connection.on_close.append(lambda closed, sid=server.id: self._closed(sid, closed))
            self._open[server.id] = connection
            self.changes += 1
            return connection

    def _handle(self, connection: Connection, kind: int, flags: int, id: int, body: Dict[str, Any]) -> None:
        if kind == Kind.DEATH:
            # The server leaves: nothing new goes to it on this connection; what is in flight is
            # still answered. We answer once we will send nothing more here.
            self._leaving.add(id_of(connection))
            self.changes += 1
            if id:
                try:
                    connection.send(Kind.REP, id, {"v": None})
                except LabcError:
                    pass

    def _closed(self, server_id: str, connection: Connection) -> None:
        if self._open.get(server_id) is connection:
            del self._open[server_id]
        self._leaving.discard(id_of(connection))
        self.changes += 1

    def drop(self, server_id: str) -> None:
        """The server left the pool: its connection closes, failing what waited on it."""
        connection = self._open.pop(server_id, None)
        self._routed.discard(server_id)
        self.changes += 1
        if connection is not None:
            connection.close(ConnectionLostError("the server left the pool"))

    def connections(self) -> Tuple[Connection, ...]:
        return tuple(self._open.values())

    def close(self) -> None:
        for connection in list(self._open.values()):
            connection.close_after_flush(1.0)
        self._open.clear()
        self.changes += 1


def id_of(connection: Connection) -> int:
    return id(connection)
