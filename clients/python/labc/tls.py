"""Links secured with the network's secret: TLS 1.3 with an external pre-shared key, as
docs/protocol.md#secured-links says (and lib/trust/tls-link.ts does on the TypeScript side).

The keys come from the secret (secret.py); the handshake is OpenSSL's, reached through ``ssl``'s
PSK callbacks, which Python has from 3.13 (``SSLContext.set_psk_client_callback``). On an older
Python a link to another host cannot be secured, and the error says so: there is no other way in
through ``ssl``. Links between processes of one host need no TLS (local_proof.py): a server here
takes them, and a challenge, before it asks for TLS.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import sys
import time
from typing import Any, Callable, Dict, Optional

from . import local_proof
from .errors import ConfigError, LabcError, NotTrustedError
from .secret import NetworkKey, PREFIX, hkdf_sha256, network_key, parse_secret, secret_problem  # noqa: F401 (tls.X as before)
from .tls_socket import TlsSocket, use_tls_socket, wrap

#: The suites a PSK of SHA-256 can be used with (OpenSSL offers an external PSK under those alone).
CIPHERS = ("TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256")
#: How long a client's handshake may take when its socket has no timeout.
HANDSHAKE_S = 10.0
#: The first byte of a TLS record that carries a handshake (a ClientHello).
_TLS_HANDSHAKE = 0x16
_CERTIFICATE = "presented a certificate instead of the network key: it does not hold the secret"


def supported() -> Optional[str]:
    """None when this Python can secure links; else why not (for the error)."""
    if sys.version_info < (3, 13) or not hasattr(ssl.SSLContext, "set_psk_client_callback"):
        return "its ssl module has no TLS-PSK callbacks (SSLContext.set_psk_client_callback came in Python 3.13)"
    if not getattr(ssl, "HAS_PSK", False):
        return f"its ssl module was built without PSK support ({ssl.OPENSSL_VERSION})"
    if not getattr(ssl, "HAS_TLSv1_3", False):
        return f"its ssl module has no TLS 1.3 ({ssl.OPENSSL_VERSION})"
    return None


def require_support() -> None:
    """Raises the ConfigError that says this Python cannot join a network with a secret.

    A ConfigError (LABC_CONFIG), not NotTrustedError: no peer is at fault and no secret is
    wrong; what must change is this process's setup (which Python runs it), and code that
    catches NotTrustedError to tell a user "the secrets differ" must not catch this.
    """
    why = supported()
    if why is not None:
        version = ".".join(str(n) for n in sys.version_info[:3])
        raise ConfigError(
            f"this labc network has a secret (network.secret is set), and secured links need Python 3.13 or newer: "
            f"this is Python {version} ({sys.executable}), and {why}. Run this program with python3.13 or newer",
            data={"key": "network.secret", "python": version},
        )


def _tls13(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    # X25519 alone (OpenSSL 3: the only group offered or accepted); psk_dhe_ke is OpenSSL's only
    # mode unless OP_ALLOW_NO_DHE_KEX is set, and it is not: every handshake is an exchange.
    context.set_ecdh_curve("X25519")
    # TLS 1.3 suites cannot be chosen through ssl (set_ciphers is for 1.2 and below): the PSK's
    # hash (SHA-256) narrows what a handshake with it can use, and it is checked after.


_client_contexts: Dict[str, ssl.SSLContext] = {}


def _client_context(key: NetworkKey) -> ssl.SSLContext:
    context = _client_contexts.get(key.id)
    if context is None:
        context = use_tls_socket(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        _tls13(context)
        # No name to check (no SNI, no certificate), but a certificate is still *verified*,
        # against a trust store left empty: a server that tries a certificate instead of the
        # key fails inside the handshake, before this side finishes it. (ssl cannot limit the
        # signature schemes offered, as the TypeScript side does; this closes the same door.)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED
        psk, identity = key.psk, key.identity
        context.set_psk_client_callback(lambda hint: (identity, psk))
        _client_contexts[key.id] = context
    return context


def _handshake(tls: ssl.SSLSocket, deadline: float) -> None:
    """Runs the handshake of a non-blocking TLS socket to its end, or ``socket.timeout`` at ``deadline``."""
    while True:
        try:
            tls.do_handshake()
            return
        except ssl.SSLWantReadError:
            wait = ([tls], [])
        except ssl.SSLWantWriteError:
            wait = ([], [tls])
        left = deadline - time.monotonic()
        if left <= 0 or not any(select.select(wait[0], wait[1], [], left)[:2]):
            raise socket.timeout("TLS handshake timed out")


def _check(tls: ssl.SSLSocket) -> Optional[str]:
    """What is wrong with a finished handshake, or None: the checks both sides make after it.

    What Python lets us see, and what each proves:
    - ``session_reused`` is OpenSSL's ``SSL_session_reused``: true when the handshake was keyed by
      a PSK the peer accepted, false for a certificate handshake. Neither side of labc ever
      offers or issues a session ticket (the client sets no ``session``; the server issues none,
      ``num_tickets = 0``), so the PSK can only be the network's. A completed handshake then
      proves the peer holds the key: its Finished message is a MAC under keys derived from it.
    - ``getpeercert(binary_form=True) is None``: no certificate came at all (the dict form is
      empty for a certificate that came unverified, so it is not used).
    - ``version()`` and ``cipher()``: TLS 1.3, and a suite of docs/protocol.md.
    What it cannot show: which identity the server chose (there is one to choose), the group
    the exchange used (X25519 is the only one either side allows) or the PSK mode (OpenSSL
    offers psk_dhe_ke alone).
    """
    if tls.version() != "TLSv1.3":
        return f"negotiated {tls.version()}, not TLS 1.3"
    cipher = tls.cipher()
    if cipher is None or cipher[0] not in CIPHERS:
        return f"negotiated the suite {cipher[0] if cipher else None}, not one of {', '.join(CIPHERS)}"
    if tls.getpeercert(binary_form=True) is not None:
        return _CERTIFICATE
    if not tls.session_reused:
        return "completed a TLS handshake without the network key (no PSK was used)"
    return None


def _key_or_close(sock: socket.socket, secret: Any) -> Any:
    """The network key of ``secret`` (a text; a NetworkKey or rotation.KeyRing is taken as it is),
    where this Python can secure links; else the error, the socket closed (either side of a link
    closes what it cannot secure)."""
    try:
        key = network_key(secret) if isinstance(secret, str) else secret
        require_support()
    except LabcError:
        sock.close()
        raise
    return key


def _close_unless_proved(tls: ssl.SSLSocket, address: str, problem: Optional[str]) -> None:
    """After a handshake: NotTrustedError naming ``address`` when ``problem``, the link closed."""
    if problem is not None:
        tls.close()
        raise NotTrustedError(f"{address}: {problem}", data={"address": address})


def client_side(sock: socket.socket, secret: Any, address: str) -> TlsSocket:
    """Secures a connected socket as a client: a TLS socket once the peer proved the network key
    (of ``secret``, or the NetworkKey given: dial.py offers each key of a rotation in turn).

    The handshake takes at most the socket's timeout (HANDSHAKE_S without one); a timeout is
    ``socket.timeout``, as for a connect. A peer that has another secret, none, or offers a
    certificate: NotTrustedError naming ``address``. The socket is closed when this raises.
    """
    key = _key_or_close(sock, secret)
    deadline = time.monotonic() + (sock.gettimeout() or HANDSHAKE_S)
    timeout = sock.gettimeout()
    sock.setblocking(False)
    tls = wrap(_client_context(key), sock, server_side=False)
    try:
        _handshake(tls, deadline)
    except ssl.SSLCertVerificationError as error:
        tls.close()
        raise NotTrustedError(f"{address}: {_CERTIFICATE}", data={"address": address}) from error
    except ssl.SSLError as error:
        tls.close()
        raise NotTrustedError(f"{address}: {_client_failure(error, key)}", data={"address": address}) from error
    except (ConnectionError, EOFError) as error:
        tls.close()
        raise NotTrustedError(f"{address}: closed the connection during the TLS handshake: it has no network secret, or another one",
                              data={"address": address}) from error
    except BaseException:
        tls.close()
        raise
    _close_unless_proved(tls, address, _check(tls))
    tls.settimeout(timeout)
    return tls


def _client_failure(error: ssl.SSLError, key: NetworkKey) -> str:
    """Why a handshake failed, from OpenSSL's reason, in the TypeScript client's words."""
    reason = f"{error.reason or ''} {error}".upper()
    if "CERTIFICATE" in reason or "WRONG_SIGNATURE_TYPE" in reason:
        return _CERTIFICATE
    if "EOF" in reason or isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return "closed the connection during the TLS handshake: it has no network secret, or another one"
    if re.search(r"WRONG_VERSION|PACKET_LENGTH|RECORD_LAYER|RECORD LAYER|WRONG VERSION", reason):
        return "answered without TLS: it has no network secret, and this process has one"
    if re.search(r"ALERT|DECRYPT|BAD_RECORD_MAC", reason):
        return f"refused our network secret (key id {key.id}): it has another one"
    return f"the TLS handshake failed ({error.reason or error}): it has no network secret, or another one"


def server_side(sock: socket.socket, secret: Any, timeout: float) -> socket.socket:
    """Secures a socket this process accepted: a TLS socket once the peer proved the network key
    (of ``secret``, or either key of a rotation.KeyRing's during a rotation), within ``timeout``
    seconds in all; the plain socket when a process of this host proved it on loopback
    (local_proof.py, which needs no TLS). A peer that does not (another secret, none, a resumed
    session, a certificate) gets NotTrustedError naming its address; one speaking plain labc
    that sent a ``hello`` with an id is first answered why, in plain frames. The socket is closed
    when this raises.
    """
    try:
        key = network_key(secret) if isinstance(secret, str) else secret
    except LabcError:
        sock.close()
        raise
    address = _address(sock.getpeername)
    deadline = time.monotonic() + timeout
    sock.setblocking(False)
    try:
        first = _peek(sock, deadline)
        if not first:
            raise NotTrustedError(f"{address}: closed before a TLS handshake", data={"address": address})
        if first == local_proof.MAGIC[:1]:
            if not getattr(key, "local_proof", True):
                # Closed without a word: the dialer takes it for a labc without the proof, and dials TLS.
                raise NotTrustedError(f"{address}: it offered the local proof, and this host takes TLS only (network.local_proof = false)",
                                      data={"address": address})
            keys = key.dial_order() if hasattr(key, "dial_order") else [key]
            proof_deadline = min(deadline, time.monotonic() + local_proof.ACCEPT_S)
            return local_proof.server_side(sock, keys, address, proof_deadline, lambda key_id: _unknown_key(key, key_id))
        if first[0] != _TLS_HANDSHAKE:
            _answer_plain_peer(sock, deadline)
            raise NotTrustedError(f"{address}: it speaks labc without TLS: it has no network secret", data={"address": address})
        require_support()
    except socket.timeout as error:
        sock.close()
        raise NotTrustedError(f"{address}: no TLS handshake within {timeout:g} s", data={"address": address}) from error
    except BaseException:
        sock.close()
        raise
    # A context per link: its callback records whether this very handshake took our key.
    took = [False]
    unknown = [None]

    def psk_for(identity: Optional[str]) -> bytes:
        psk = key.psk_for(identity)
        if psk:
            took[0] = True
            return psk
        unknown[0] = (identity or "").replace("labc1 ", "", 1)
        return b""  # refused: the handshake fails with an alert

    context = use_tls_socket(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    _tls13(context)
    context.verify_mode = ssl.CERT_NONE  # asks for no certificate (one sent unasked is an error)
    context.num_tickets = 0  # no tickets, so no session resumes: each link proves the key afresh
    context.set_psk_server_callback(psk_for)
    tls = wrap(context, sock, server_side=True)
    try:
        _handshake(tls, deadline)
    except (ssl.SSLError, OSError, EOFError) as error:
        tls.close()
        if unknown[0] is not None:
            why = _unknown_key(key, unknown[0])
        elif isinstance(error, socket.timeout):
            why = f"no TLS handshake within {timeout:g} s"
        else:
            why = f"TLS handshake failed ({getattr(error, 'reason', None) or error})"
        raise NotTrustedError(f"{address}: {why}", data={"address": address}) from error
    except BaseException:
        tls.close()
        raise
    _close_unless_proved(tls, address, _check(tls) if took[0] else "it completed a TLS handshake without our network key")
    return tls


def _unknown_key(key: Any, key_id: str) -> str:
    """Why a peer that named a key id not ours is refused."""
    return f"it has another network secret (key id {key_id}; ours is {key.id})"


def _address(get: Callable[[], object]) -> str:
    try:
        where = get()
    except OSError:
        return "?"
    if isinstance(where, tuple):
        return f"{str(where[0]).replace('::ffff:', '')}:{where[1]}"
    return str(where) or "?"


def _peek(sock: socket.socket, deadline: float) -> bytes:
    while True:
        try:
            return sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            pass
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            raise socket.timeout("no TLS handshake in time")


def _answer_plain_peer(sock: socket.socket, deadline: float) -> None:
    """A labc peer without the secret: a ``hello`` with an id gets an ``exc`` saying why."""
    from .frames import Kind, encode

    head = b""
    while len(head) < 12 and time.monotonic() < deadline:
        try:
            chunk = sock.recv(12 - len(head))
        except BlockingIOError:
            select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
            continue
        except OSError:
            return
        if not chunk:
            return
        head += chunk
    if len(head) < 12 or head[4] != Kind.HELLO:
        return
    request = int.from_bytes(head[8:12], "big")
    if request == 0:
        return
    local = _address(sock.getsockname)
    message = f"{local}: this host requires the network secret: set the same secret on this host (`labc secret show` on a host that has it)"
    frame = encode(Kind.EXC, request, {"name": "NotTrustedError", "code": "LABC_NOT_TRUSTED", "message": message, "data": {"address": local}})
    try:
        sock.setblocking(True)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        sock.sendall(frame)
    except OSError:
        pass

