"""The TLS socket of a secured link (tls.py makes them): an ``ssl.SSLSocket`` whose calls into
OpenSSL's connection object are taken one thread at a time.

OpenSSL allows one thread at a time in an SSL object (SSL_read, SSL_write and SSL_pending share
its record layer, its buffers and its state machine), and ``ssl`` lets go of the GIL around
each call without a lock of its own. A labc connection is read by one thread (the I/O loop, or
a caller waiting for its answer) while another writes to it (a caller sending its request, a
handler answering): on a new link that overlaps the session tickets a TypeScript peer sends
right after the handshake, and a request then sometimes left as nothing the peer could read,
or its answer was never read: the call timed out (tests/test_tls_socket.py plays it). Every
socket a link uses is non-blocking (connection.py), so the lock is only held for the time of
one call into OpenSSL, never while waiting for the network.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any


class TlsSocket(ssl.SSLSocket):
    """An SSLSocket taking its turn for each read, write and ``pending`` (``wrap`` makes them)."""

    # Set by ``wrap`` before the socket is handed to anyone: ssl builds SSLSockets without __init__.
    _turn: threading.Lock

    def read(self, len: int = 1024, buffer: Any = None) -> Any:  # recv and recv_into come here
        with self._turn:
            return super().read(len, buffer)

    def write(self, data: Any) -> int:
        with self._turn:
            return super().write(data)

    def send(self, data: Any, flags: int = 0) -> int:  # sendall comes here; it writes without ``write``
        with self._turn:
            return super().send(data, flags)

    def pending(self) -> int:
        with self._turn:
            return super().pending()


def use_tls_socket(context: ssl.SSLContext) -> ssl.SSLContext:
    """Makes ``context.wrap_socket`` give TlsSockets (to be wrapped with ``wrap`` only)."""
    context.sslsocket_class = TlsSocket
    return context


def wrap(context: ssl.SSLContext, sock: Any, server_side: bool) -> TlsSocket:
    """``sock`` as a TlsSocket of ``context`` (set up by ``use_tls_socket``), its handshake not begun."""
    tls = context.wrap_socket(sock, server_side=server_side, server_hostname=None, do_handshake_on_connect=False)
    tls._turn = threading.Lock()
    return tls
