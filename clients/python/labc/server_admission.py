"""Which connections a server takes and keeps: accepting on its port, handshakes (TLS, or the
local proof on loopback) on threads of their own (bounded per address, all of loopback counting
as one, and in all), connections that have not said hello yet
(bounded per address, the oldest cut), and the hello and frame timeouts. Part of Server
(server.py), which sets the state used here (``listener``, ``connections``, ``_unproved``,
``_handshaking``, ``_partial``...)."""

from __future__ import annotations

import socket
import sys
import threading

from .connection import Connection
from .dial import from_own_host
from .errors import ConfigError, LabcError, LimitError, NotTrustedError
from .local_proof import is_loopback
from .rotation import KeyRing, keys_of
from .tls import server_side
from .trips import refused, tripped

#: Handshakes under way at once, per address (all of 127.0.0.0/8 and ::1 counting as one: a
#: process of this host has all of it) and in all (each holds a thread).
HANDSHAKES, HANDSHAKES_AT_ONCE = 16, 256


class ServerAdmission:
    """The admission part of Server (a mixin: it has no state of its own)."""

    def _accept(self) -> None:
        while self.listener is not None:
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, OSError):
                return
            host = address[0]
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            keys = keys_of(self.config)
            if keys is not None:
                if not self._handshake_room(host, address[1]):
                    sock.close()
                    continue
                self._look(keys)
                self._handshaking.setdefault(_bucket(host), {})[id(sock)] = sock
                threading.Thread(target=self._secure, args=(sock, host, keys), daemon=True, name="labc tls").start()
            else:
                self._adopt(sock, host)

    def _handshake_room(self, host: str, port: int) -> bool:
        """Room for one more handshake thread: at most HANDSHAKES per address (the oldest is cut)
        and HANDSHAKES_AT_ONCE in all (the new one is refused)."""
        if sum(len(shaking) for shaking in self._handshaking.values()) >= HANDSHAKES_AT_ONCE:
            tripped("connections_per_address", f"{host}:{port}", f"{HANDSHAKES_AT_ONCE} handshakes under way; closed the next at once")
            return False
        shaking = self._handshaking.get(_bucket(host), {})
        if len(shaking) >= HANDSHAKES:
            oldest = next(iter(shaking.values()))
            where = "this host's loopback" if is_loopback(host) else "it"
            tripped("connections_per_address", f"{host}:{port}", f"{len(shaking)} handshakes under way from {where}; the oldest was cut")
            shaking.pop(id(oldest), None)
            try:
                oldest.shutdown(socket.SHUT_RDWR)  # its thread's handshake fails, and the thread ends
            except OSError:
                pass
        return True

    @staticmethod
    def _look(keys: KeyRing) -> None:
        """A rotation of the secret recorded since the last look (at most every 2 s): during its
        window a link proved with either secret is taken, after it only the next one."""
        try:
            keys.look()
        except ConfigError as error:
            # A record others may read is refused; the keys known so far stay in force.
            print(f"labc: {error}", file=sys.stderr)

    def _secure(self, sock: socket.socket, host: str, keys: KeyRing) -> None:
        try:
            secured = server_side(sock, keys, float(self.config["limits.hello_timeout"]))
        except (LabcError, OSError) as error:
            sock.close()
            if isinstance(error, (NotTrustedError, ConfigError)):
                # As the TypeScript side logs it: once per peer and minute, with why.
                refused(f"[{host}]:0" if ":" in host else f"{host}:0", str(error).split(": ", 1)[-1] if isinstance(error, NotTrustedError) else str(error))
            return
        finally:
            self.loop.call_soon(lambda: self._handshaking.get(_bucket(host), {}).pop(id(sock), None))
        self.loop.call_soon(lambda: self._adopt(secured, host))

    def _adopt(self, sock: socket.socket, host: str) -> None:
        own = from_own_host(sock)
        connection = Connection(self.loop, sock, f"caller at {host}", self.handle, self.config["wire.max_frame_size"],
                                self.config["limits.queued"], self.config["limits.unsent"], self._partial)
        connection.accepted = True  # type: ignore[attr-defined]
        connection.own_host = own  # type: ignore[attr-defined]
        connection.remote_host = host  # type: ignore[attr-defined]
        waiting = self._unproved.setdefault(host, {})
        if len(waiting) >= self.config["limits.connections_per_address"]:
            oldest = next(iter(waiting.values()))
            tripped("connections_per_address", f"caller at {host}", f"{len(waiting)} connections from it have not said hello: the oldest was closed")
            waiting.pop(id(oldest), None)
            oldest.close(LabcError("closed to make room: too many connections from its address without a hello"))
        waiting[id(connection)] = connection
        self.connections[id(connection)] = connection
        connection.on_close.append(lambda closed: self._forget(closed, host))
        if self.leaving:
            self._tell(connection)

    def _proved(self, connection: Connection, host: str) -> None:
        waiting = self._unproved.get(host)
        if waiting is not None and waiting.pop(id(connection), None) is not None and not waiting:
            del self._unproved[host]

    def _forget(self, connection: Connection, host: str) -> None:
        self.connections.pop(id(connection), None)
        self._proved(connection, host)
        with self._lock:
            running = self._running.pop(id(connection), {})
            self._call_bytes.pop(id(connection), None)
            self._call_total.pop(id(connection), None)
        for call in running.values():
            call.cancel()

    def _check_timeouts(self, now: float) -> None:
        hello_s = float(self.config["limits.hello_timeout"])
        frame_s = float(self.config["limits.frame_timeout"])
        for connection in list(self.connections.values()):
            if not connection.peer and now - connection.opened_at > hello_s:
                tripped("hello_timeout", connection.remote, f"no hello within {hello_s:g} s; closed the connection ({connection.label})")
                connection.close(LimitError("no hello within limits.hello_timeout", data={"limit": "hello_timeout"}))
            elif connection.partial_since and not connection.paused and now - connection.partial_since > frame_s:
                tripped("frame_timeout", connection.remote, f"a frame still incomplete {frame_s:g} s after its first byte; closed the connection ({connection.label})")
                connection.close(LimitError("a frame did not arrive whole within limits.frame_timeout", data={"limit": "frame_timeout"}))


def _bucket(host: str) -> str:
    """Where a peer's handshakes are counted: its address, or "loopback" for any of this host's."""
    return "loopback" if is_loopback(host) else host
