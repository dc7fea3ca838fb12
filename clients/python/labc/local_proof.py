"""Links between two processes of one host, in a network with a secret: each proves the secret
by an answer to the other's challenge, bound to the connection's loopback addresses and ports,
and frames then travel as they do without a secret (docs/protocol.md#local-links; the TypeScript
side is lib/trust/local-proof.ts).

On loopback only the kernel carries the bytes, and another user can neither read nor inject
them (root can, and has the secret anyway; so can a process with CAP_NET_RAW, which is why
``network.local_proof = false`` keeps TLS: docs/security.md#local-links). What TLS still gives
here, proof of the secret both ways, this gives with ``hmac`` and ``hashlib`` alone. That is also why a Python without TLS-PSK (before 3.13)
takes part in a network with a secret on its own host: calls to this host's servers and the
router, serving, publishing. The 4-tuple is what a process relaying the exchange (one that took
a dead server's port, or the router's) cannot forward: it would prove a connection not its own.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import socket
import time
from typing import Any, Iterable, Optional, Tuple

from .errors import NotTrustedError

MAGIC = b"LCL1"
#: The server's answer to a key id it does not hold, before it closes.
REFUSED = b"LCLX"
_NONCE, _KEY_ID, _MAC = 32, 8, 32
_CHALLENGE = len(MAGIC) + _KEY_ID + _NONCE
_ANSWER = len(MAGIC) + _NONCE + _MAC
#: How long the exchange may take when the socket has no timeout.
EXCHANGE_S = 10.0
#: How long a server waits for a challenge and a proof: two round trips on loopback, so a peer
#: that stalls holds a handshake's thread for this long at most, not limits.hello_timeout.
ACCEPT_S = 3.0


class OlderPeer(Exception):
    """A peer on loopback did not take the challenge (a labc from before local links, or one with
    ``network.local_proof = false``): it takes TLS only."""


def is_loopback(address: str) -> bool:
    """Whether ``address`` ("127.0.0.1", "::ffff:127.0.0.1", "::1") is a loopback address (a host
    name is not, whatever it starts with)."""
    bare = address[7:] if address.startswith("::ffff:") else address
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def on_loopback(sock: socket.socket) -> bool:
    """Whether both ends of ``sock`` are loopback addresses: a link between two processes of this host."""
    try:
        return is_loopback(sock.getpeername()[0]) and is_loopback(sock.getsockname()[0])
    except OSError:
        return False


def binding(client: Tuple[Any, ...], server: Tuple[Any, ...]) -> bytes:
    """The connection as both sides write it: "client-address client-port server-address server-port"."""
    def plain(address: str) -> str:
        return address[7:] if address.startswith("::ffff:") else address
    return f"{plain(client[0])} {client[1]} {plain(server[0])} {server[1]}".encode("latin-1")


def proof(local_key: bytes, side: str, client_nonce: bytes, server_nonce: bytes, tuple_: bytes) -> bytes:
    """HMAC-SHA256 under the local key of "labc local 1 <side> ", both nonces and the binding."""
    return hmac.new(local_key, f"labc local 1 {side} ".encode() + client_nonce + server_nonce + tuple_, "sha256").digest()


def _read_exactly(sock: socket.socket, count: int, deadline: float) -> bytes:
    """``count`` bytes, or fewer when the peer closed first; ``socket.timeout`` at ``deadline``."""
    got = b""
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("the local proof timed out")
        sock.settimeout(left)
        try:
            chunk = sock.recv(count - len(got))
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""  # a peer that does not take the proof may close on what it did not read
        if not chunk:
            return got
        got += chunk
    return got


def client_side(sock: socket.socket, key: Any, address: str) -> socket.socket:
    """Proves ``key`` (a tls.NetworkKey) on a socket connected to a process of this host, and
    checks its proof back: the socket, its timeout as it was, once both hold. NotTrustedError
    naming ``address`` when the peer refused the key or answered wrong; OlderPeer when it did not
    take the proof (closed or reset without a word, or answered as a labc without it does). The
    socket is closed when this raises."""
    timeout = sock.gettimeout()
    deadline = time.monotonic() + (timeout or EXCHANGE_S)
    try:
        if not on_loopback(sock):
            raise NotTrustedError(f"{address}: is not on this host's loopback: the local proof is for links between processes of one host",
                                  data={"address": address})
        tuple_ = binding(sock.getsockname(), sock.getpeername())
        client_nonce = os.urandom(_NONCE)
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            sock.sendall(MAGIC + bytes.fromhex(key.id) + client_nonce)
        except (ConnectionResetError, BrokenPipeError) as error:
            raise OlderPeer(f"{address} closed the connection at the local proof") from error
        answer = _read_exactly(sock, _ANSWER, deadline)
        if answer.startswith(REFUSED):
            raise NotTrustedError(f"{address}: refused our network secret (key id {key.id}): it has another one", data={"address": address})
        if answer[:3] != MAGIC[:3]:
            # Nothing, or not the proof's: a labc without it read the challenge as a frame.
            raise OlderPeer(f"{address} did not take the local proof" + (" (it closed without a word)" if not answer else ""))
        server_nonce = answer[len(MAGIC):len(MAGIC) + _NONCE]
        if (len(answer) < _ANSWER or not answer.startswith(MAGIC)
                or not hmac.compare_digest(answer[len(MAGIC) + _NONCE:], proof(key.local_key, "server", client_nonce, server_nonce, tuple_))):
            why = ("its answer to the local proof was wrong: it does not hold the network secret" if len(answer) == _ANSWER
                   else "closed the connection during the local proof: it has no network secret, or another one")
            raise NotTrustedError(f"{address}: {why}", data={"address": address})
        sock.sendall(proof(key.local_key, "client", client_nonce, server_nonce, tuple_))
    except socket.timeout as error:
        sock.close()
        raise socket.timeout(f"{address}: the local proof timed out") from error
    except BaseException:
        sock.close()
        raise
    sock.settimeout(timeout)
    return sock


def server_side(sock: socket.socket, keys: Iterable[Any], address: str, deadline: float, unknown: Any) -> socket.socket:
    """The accepting side, once the first byte is MAGIC's: the socket once the peer proved one of
    ``keys`` (tls.NetworkKey: the secret's, or either of a rotation's), with nothing read past its
    proof. NotTrustedError naming ``address`` otherwise (``unknown(key_id)`` says why a key id not
    ours is refused); the socket is closed then."""
    try:
        if not on_loopback(sock):
            raise NotTrustedError(f"{address}: it offered the local proof from another host's address: links from other hosts take TLS",
                                  data={"address": address})
        tuple_ = binding(sock.getpeername(), sock.getsockname())
        challenge = _read_exactly(sock, _CHALLENGE, deadline)
        if len(challenge) < _CHALLENGE:
            # Closed before a whole challenge (a port probe): nothing to refuse, as on the TypeScript side.
            raise ConnectionAbortedError(f"{address}: closed before its challenge was complete")
        if not challenge.startswith(MAGIC):
            raise NotTrustedError(f"{address}: it sent a malformed local proof", data={"address": address})
        key_id = challenge[len(MAGIC):len(MAGIC) + _KEY_ID].hex()
        key: Optional[Any] = next((each for each in keys if each.id == key_id), None)
        if key is None:
            try:
                sock.sendall(REFUSED)
            except OSError:
                pass
            raise NotTrustedError(f"{address}: {unknown(key_id)}", data={"address": address})
        client_nonce = challenge[len(MAGIC) + _KEY_ID:]
        server_nonce = os.urandom(_NONCE)
        sock.sendall(MAGIC + server_nonce + proof(key.local_key, "server", client_nonce, server_nonce, tuple_))
        given = _read_exactly(sock, _MAC, deadline)
        if len(given) < _MAC:
            raise ConnectionAbortedError(f"{address}: closed before its proof")
        if not hmac.compare_digest(given, proof(key.local_key, "client", client_nonce, server_nonce, tuple_)):
            raise NotTrustedError(f"{address}: its local proof of the network secret was wrong: it does not hold the secret", data={"address": address})
    except socket.timeout as error:
        sock.close()
        raise NotTrustedError(f"{address}: no local proof in time", data={"address": address}) from error
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)  # as the TLS side leaves it (server_admission.py adopts it so)
    return sock
