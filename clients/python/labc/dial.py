"""Opening a connection: TCP, then the network's TLS when a secret is set (docs/protocol.md#secured-links)."""

from __future__ import annotations

import socket
from typing import Optional

from .errors import NotTrustedError


def dial(address: str, port: int, timeout: float, secret: str = "") -> socket.socket:
    """A connected socket (blocking, with TCP_NODELAY), secured when ``secret`` is set.

    Raises OSError when nothing listens, NotTrustedError when the TLS handshake fails.
    """
    sock = socket.create_connection((address, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not secret:
        return sock
    from .tls import client_side

    try:
        return client_side(sock, secret, f"{address}:{port}")
    except NotTrustedError:
        sock.close()
        raise


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
    return remote.startswith("127.") or remote == "::1" or remote == local
