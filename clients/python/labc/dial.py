"""Opening a connection: TCP, then the network's TLS when a secret is set (docs/protocol.md#secured-links),
or the local proof when the address is this host's loopback (docs/protocol.md#local-links)."""

from __future__ import annotations

import re
import socket
from typing import Optional, Union

from . import local_proof, tls
from .errors import ConfigError, NotTrustedError
from .rotation import KeyRing, key_ring
from .tls import client_side

#: How a refusal of the key offered reads (tls.py): a peer with another secret, or without the next one yet.
_REFUSED_KEY = re.compile(r"refused our network secret")


def dial(address: str, port: int, timeout: float, secret: Union[str, KeyRing, None] = "") -> socket.socket:
    """A connected socket (blocking, with TCP_NODELAY), secured when ``secret`` is set (a text,
    or the KeyRing of a config: rotation.keys_of).

    A process of this host (a loopback ``address``) is dialed with the local proof, which needs no
    TLS (a labc from before it, which closes at once, is dialed again with TLS). During a rotation
    of the secret the next one is offered first; a peer that refuses it (it has not learned it
    yet) gets the current one, on a new connection (lib/net/connect-tcp.ts does the same).
    Raises OSError when nothing listens, NotTrustedError when the proof or the TLS handshake fails.
    """
    keys = key_ring(secret) if isinstance(secret, str) and secret else secret or None
    if keys is not None:
        keys.look()
    order = keys.dial_order() if keys is not None else [None]
    if keys is not None and not keys.local_proof and local_proof.is_loopback(address) and tls.supported() is not None:
        raise ConfigError(f"{address}:{port}: network.local_proof = false keeps TLS between the processes of this host, "
                          f"and TLS needs Python 3.13 or newer: {tls.supported()}", data={"key": "network.local_proof"})
    for index, key in enumerate(order):
        sock = socket.create_connection((address, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if key is None:
            return sock
        try:
            if keys.local_proof and local_proof.is_loopback(address):
                try:
                    return local_proof.client_side(sock, key, f"{address}:{port}")
                except local_proof.OlderPeer as older:
                    why = tls.supported()
                    if why is not None:
                        raise ConfigError(f"{older}: it takes TLS only (a labc from before local links, or one with network.local_proof = false), "
                                          f"and TLS needs Python 3.13 or newer: {why}", data={"key": "network.secret"}) from older
                    sock = socket.create_connection((address, port), timeout=timeout)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return client_side(sock, key, f"{address}:{port}")
        except NotTrustedError as error:
            sock.close()
            if index + 1 == len(order) or not _REFUSED_KEY.search(str(error)):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def describe_address(address: str, port: int) -> str:
    return f"{address}:{port}"


def listen(address: str, port: int = 0, backlog: int = 512) -> socket.socket:
    """A listening socket for a server's own port (any free one by default)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(backlog)
    return sock


def own_address(sock: socket.socket) -> Optional[str]:
    try:
        return sock.getsockname()[0]
    except OSError:
        return None


def from_own_host(sock: socket.socket) -> bool:
    """Whether an accepted connection comes from a process of this host: loopback, or the very
    address it reached us on (a process dialing this host's own address arrives from it)."""
    try:
        remote = sock.getpeername()[0]
        local = sock.getsockname()[0]
    except OSError:
        return False
    if remote.startswith("::ffff:"):
        remote = remote[7:]
    if local.startswith("::ffff:"):
        local = local[7:]
    return local_proof.is_loopback(remote) or remote == local
