"""The local proof (labc/local_proof.py, docs/protocol.md#local-links): the protocol's test vector,
both sides on real loopback sockets, and a peer without the secret playing it by hand against a
Python server (its own socket, its own bytes). Needs no TLS: it runs on any Python."""

import hashlib
import hmac
import os
import socket
import sys
import threading
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

from support import in_thread  # noqa: E402
import labc  # noqa: E402
from labc import local_proof, tls  # noqa: E402
from labc.errors import NotTrustedError  # noqa: E402
from labc.frames import FrameReader, Kind, encode  # noqa: E402

#: The secret of the protocol's vectors: the bytes 0 to 31.
VECTOR_SECRET = "labc1_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
SECRET = "labc1_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
OTHER = "labc1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


class Vector(unittest.TestCase):
    def test_the_key_and_both_proofs_match_the_protocol(self):
        key = tls.NetworkKey(VECTOR_SECRET)
        self.assertEqual(key.id, "f3c09f90b4c0959a")
        self.assertEqual(key.local_key.hex(), "0a65689de1c787e2ee2fadc56da8729175480590dec6336e83931b26d4f1c8d4")
        nonces, tuple_ = (b"\x11" * 32, b"\x22" * 32), b"127.0.0.1 40312 127.0.0.1 55555"
        self.assertEqual(local_proof.proof(key.local_key, "server", *nonces, tuple_).hex(),
                         "38c0ed612b61e448c708530405e0b4f37163e9c35c4db5f10d5dc6ceec3d2cbc")
        self.assertEqual(local_proof.proof(key.local_key, "client", *nonces, tuple_).hex(),
                         "347d1617e5d55ee89c0bb5a6817d6d683f98b25eb6c059134a058c2cc9ae4444")
        # Over one of the host's Unix sockets (docs/protocol.md#local-sockets), the socket's name.
        socket_ = b"unix 0123456789ab.55555"
        self.assertEqual(local_proof.proof(key.local_key, "server", *nonces, socket_).hex(),
                         "d4c36ca3ca44268bdbcb0999de1db7c44ded92d6eb2e791ffa901203ec776175")
        self.assertEqual(local_proof.proof(key.local_key, "client", *nonces, socket_).hex(),
                         "d6f1f8156d882c9e2999e6b8274e15d91c44937e9da1d7230c726716c39bf820")

    def test_loopback_addresses(self):
        for address, loopback in (("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
                                  ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("1270::1", False), ("fe80::1", False)):
            self.assertEqual(local_proof.is_loopback(address), loopback, address)


def accepted_pair():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    with server:
        client = socket.create_connection(server.getsockname(), timeout=5)
        accepted, _ = server.accept()
    return client, accepted


class BothSides(unittest.TestCase):
    def pair(self, client_secret, server_secret):
        client, accepted = accepted_pair()
        serving = in_thread(tls.server_side, accepted, server_secret, 5.0)
        try:
            proved, client_error = local_proof.client_side(client, tls.network_key(client_secret), "127.0.0.1:x"), None
        except Exception as error:
            proved, client_error = None, error
        server, server_error = serving()
        return proved, client_error, server, server_error

    def test_the_same_secret_proves_both_ways_and_frames_sent_at_once_after_it_are_all_read(self):
        client, client_error, server, server_error = self.pair(SECRET, SECRET)
        self.assertIsNone(client_error)
        self.assertIsNone(server_error)
        with client, server:
            self.assertEqual(client.gettimeout(), 5)  # as it was before the proof
            frames = b"".join(encode(Kind.PUB, 0, {"topic": "t", "v": n}) for n in range(50))
            client.sendall(frames)
            server.setblocking(True)
            got = b""
            while len(got) < len(frames):
                got += server.recv(65536)
            self.assertEqual(got, frames)

    def test_another_secret_is_refused_on_both_sides_naming_the_key_ids(self):
        client, client_error, server, server_error = self.pair(OTHER, SECRET)
        self.assertIsInstance(client_error, NotTrustedError)
        self.assertEqual(str(client_error), "127.0.0.1:x: refused our network secret (key id 95f588bf07d96e86): it has another one")
        self.assertIsInstance(server_error, NotTrustedError)
        self.assertIn("it has another network secret (key id 95f588bf07d96e86; ours is b9e4bd70a60b0e57)", str(server_error))

    def test_a_peer_that_closes_without_a_word_is_an_older_labc(self):
        client, accepted = accepted_pair()
        accepted.close()
        with self.assertRaises(local_proof.OlderPeer):
            local_proof.client_side(client, tls.network_key(SECRET), "127.0.0.1:x")

    def test_a_peer_that_answers_a_frame_is_an_older_labc_and_is_dialed_again_with_tls(self):
        # What an older server does with a challenge whose key id starts with 01: it reads a hello with an id, answers an exc.
        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        listening.listen(3)
        self.addCleanup(listening.close)
        first_bytes = []

        def older():
            for _ in range(3):
                sock, _ = listening.accept()
                with sock:
                    sock.settimeout(5)
                    first = sock.recv(1)
                    first_bytes.append(first)
                    if first == b"L":
                        sock.sendall(encode(Kind.EXC, 1, {"code": "LABC_NOT_TRUSTED", "message": "this host requires the network secret"}))
        thread = threading.Thread(target=older, daemon=True)
        thread.start()
        port = listening.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        with self.assertRaises(local_proof.OlderPeer):
            local_proof.client_side(client, tls.network_key(SECRET), f"127.0.0.1:{port}")
        # dial() then tries TLS on a new connection (on a Python without TLS-PSK, the error that says so).
        from labc.dial import dial
        with self.assertRaises(labc.LabcError) as raised:
            dial("127.0.0.1", port, 5, SECRET).close()
        thread.join(5)
        if tls.supported() is None:
            self.assertEqual(first_bytes, [b"L", b"L", b"\x16"])  # then a ClientHello
        else:
            self.assertRegex(str(raised.exception), r"^127\.0\.0\.1:\d+ did not take the local proof: it takes TLS only .*TLS needs Python 3\.13 or newer")
            self.assertEqual(first_bytes, [b"L", b"L"])  # and no connection for TLS, which this Python cannot do

    def test_a_server_set_to_tls_only_closes_a_challenge_without_a_word(self):
        from labc.rotation import key_ring
        ring = key_ring(SECRET, os.path.join(os.path.dirname(__file__), "no-such-folder"))
        ring.local_proof = False
        self.addCleanup(setattr, ring, "local_proof", True)
        client, accepted = accepted_pair()
        serving = in_thread(tls.server_side, accepted, ring, 5.0)
        with self.assertRaises(local_proof.OlderPeer):
            local_proof.client_side(client, tls.network_key(SECRET), "127.0.0.1:x")
        _, error = serving()
        self.assertIn("this host takes TLS only (network.local_proof = false)", str(error))


def by_hand(port, key_id, local_key, address="127.0.0.1"):
    """A peer playing the local proof with its own socket and HMAC: what the server answered,
    whether that proved the secret for this connection, and the socket, its own proof sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(address, 0))
    nonce = os.urandom(32)
    sock.sendall(b"LCL1" + bytes.fromhex(key_id) + nonce)
    answer = b""
    while len(answer) < 68:
        chunk = sock.recv(68 - len(answer))
        if not chunk:
            return answer, False, sock
        answer += chunk
    here, there = sock.getsockname(), sock.getpeername()
    tuple_ = f"{here[0]} {here[1]} {there[0]} {there[1]}".encode()
    mac = lambda side: hmac.new(local_key, f"labc local 1 {side} ".encode() + nonce + answer[4:36] + tuple_, hashlib.sha256).digest()
    sock.sendall(mac("client"))
    return answer, hmac.compare_digest(mac("server"), answer[36:]), sock


def frames_until_closed(sock, seconds=3.0):
    sock.settimeout(seconds)
    reader, frames = FrameReader(1 << 20), []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return frames, True
            frames += reader.feed(chunk)
    except socket.timeout:
        return frames, False


class Stranger(unittest.TestCase):
    """tls.server_side, as a Python server takes each connection, against a peer without the
    secret playing it by hand: it knows the key id (public) and nothing else."""

    def serve_one(self):
        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        self.addCleanup(listening.close)

        def take():
            accepted, _ = listening.accept()
            return tls.server_side(accepted, SECRET, 3.0)
        return listening.getsockname()[1], in_thread(take)

    def test_a_wrong_proof_is_refused_and_nothing_after_it_is_read(self):
        port, served = self.serve_one()
        key = tls.network_key(SECRET)
        answer, proved, sock = by_hand(port, key.id, os.urandom(32))
        with sock:
            self.assertEqual((answer[:4], len(answer), proved), (b"LCL1", 68, False))  # it cannot check the server's proof either
            sock.sendall(encode(Kind.HELLO, 1, {"v": 1, "role": "client", "id": "x", "pid": 1, "host": "x", "hostId": "x"}))
            _, error = served()
            self.assertIsInstance(error, NotTrustedError)
            self.assertIn("its local proof of the network secret was wrong", str(error))
            self.assertEqual(frames_until_closed(sock), ([], True))

    def test_an_unknown_key_id_is_answered_lclx(self):
        port, served = self.serve_one()
        answer, _, sock = by_hand(port, "0123456789abcdef", os.urandom(32))
        with sock:
            self.assertEqual(answer, b"LCLX")
            _, error = served()
            self.assertIn("it has another network secret (key id 0123456789abcdef; ours is b9e4bd70a60b0e57)", str(error))

    def test_a_challenge_that_never_ends_is_cut_at_the_deadline(self):
        port, served = self.serve_one()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"LCL1" + b"\x00" * 10)  # and nothing more
            _, error = served()
            self.assertIn("no local proof in time", str(error))
            self.assertEqual(frames_until_closed(sock), ([], True))

    def test_the_right_key_proves_the_link(self):
        port, served = self.serve_one()
        key = tls.network_key(SECRET)
        answer, proved, sock = by_hand(port, key.id, key.local_key)
        with sock:
            self.assertTrue(proved)
            linked, error = served()
            self.assertIsNone(error)
            with linked:
                sock.sendall(b"after")
                linked.setblocking(True)
                self.assertEqual(linked.recv(5), b"after")


if __name__ == "__main__":
    unittest.main()
