"""Secured links (labc/tls.py, docs/protocol.md#secured-links): the keys a secret gives, pinned
to what the TypeScript side derives; the error on a Python without TLS-PSK; with a TypeScript
router and server, links on one host (the local proof, any Python); and, on Python 3.13 or newer,
real handshakes with them, and between Python processes."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

from support import free_port, in_thread  # free_port: below the ephemeral range, where a router started there can bind

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

import labc  # noqa: E402
from labc import local_proof, tls  # noqa: E402
from labc.errors import ConfigError, NotTrustedError  # noqa: E402
from labc.frames import FrameReader, Kind, encode  # noqa: E402

CLI = os.path.join(REPO, "bin", "labc.js")
HAS_PSK = sys.version_info >= (3, 13) and getattr(ssl, "HAS_PSK", False)
WHY_SKIPPED = "TLS with an external PSK needs Python 3.13's ssl (SSLContext.set_psk_client_callback); run this file with python3.13"

#: Secrets and what lib/trust/network-key.ts derives from them (npx tsx, NetworkKey: id, psk).
TS_KEYS = [
    ("labc1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "95f588bf07d96e86",
     "827d5e448060b5e34b7765d283b3a85521fb3d98506a77fe5ba63bc05163ce94"),
    # The last character carries 2 bits past the 32 bytes: both sides ignore them.
    ("labc1_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG", "b9e4bd70a60b0e57",
     "53efbeaac068454fe2e297cc3f7fa6b460a16db587b1d1d40eb01bce19cfa8c6"),
    ("labc1_-_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "32c28c0256cda573",
     "cee6f5e663f5bbc2414d2a86076d32e80a280cbf1047f6baa3b29ede8cf1dacd"),
]
SECRET = TS_KEYS[1][0]
OTHER = TS_KEYS[0][0]


class Keys(unittest.TestCase):
    def test_hkdf_sha256_is_rfc_5869(self):
        # RFC 5869, A.1.
        okm = tls.hkdf_sha256(bytes.fromhex("0b" * 22), bytes.fromhex("000102030405060708090a0b0c"), bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
        self.assertEqual(okm.hex(), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")

    def test_key_id_and_psk_are_the_typescript_sides(self):
        for secret, key_id, psk in TS_KEYS:
            with self.subTest(secret):
                key = tls.NetworkKey(secret)
                self.assertEqual(key.id, key_id)
                self.assertEqual(key.psk.hex(), psk)
                self.assertEqual(key.identity, f"labc1 {key_id}")
                self.assertEqual(tls.NetworkKey(f"  {secret}\n").id, key_id)  # as read from a file

    def test_a_secret_of_the_wrong_form_is_a_config_error_that_does_not_repeat_it(self):
        cases = {
            "hunter2": "does not start with labc1_",
            "labc1_" + "A" * 42: "42 characters after labc1_ where a secret has 43",
            "labc1_" + "A" * 42 + "+": "+, / or = of plain base64",
            "labc1_" + "A" * 42 + "é": "non-ASCII",
            "": "it is empty",
        }
        for text, problem in cases.items():
            with self.subTest(text):
                with self.assertRaises(ConfigError) as raised:
                    tls.NetworkKey(text)
                message = str(raised.exception)
                self.assertEqual(raised.exception.code, "LABC_CONFIG")
                self.assertIn("network.secret: not a labc network secret", message)
                self.assertIn(problem, message)
                if text:
                    self.assertNotIn(text, message)

    def test_a_wrong_secret_closes_the_socket_with_the_config_error(self):
        left, right = socket.socketpair()
        with left, right:
            with self.assertRaises(ConfigError):
                tls.client_side(left, "not a secret", "127.0.0.1:1")
            self.assertEqual(left.fileno(), -1)


@unittest.skipIf(HAS_PSK, "this Python has TLS-PSK")
class OlderPython(unittest.TestCase):
    def test_a_network_with_a_secret_says_it_needs_python_3_13(self):
        version = ".".join(map(str, sys.version_info[:3]))
        for side in ("client", "server"):
            left, right = socket.socketpair()
            with left, right, self.subTest(side):
                with self.assertRaises(labc.LabcError) as raised:
                    if side == "client":
                        tls.client_side(left, SECRET, "127.0.0.1:1")
                    else:
                        right.sendall(b"\x16\x03\x01")  # a TLS ClientHello begins (a local proof would not need TLS)
                        tls.server_side(left, SECRET, 1.0)
                error = raised.exception
                # LABC_CONFIG: no peer is at fault and no secret is wrong; this process's setup is.
                self.assertIsInstance(error, ConfigError)
                self.assertEqual(error.code, "LABC_CONFIG")
                self.assertIn("this labc network has a secret", str(error))
                self.assertIn("secured links need Python 3.13 or newer", str(error))
                self.assertIn(f"this is Python {version}", str(error))
                self.assertNotIn(SECRET, str(error))
                self.assertEqual(left.fileno(), -1)

def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    return server, f"127.0.0.1:{server.getsockname()[1]}"


@unittest.skipUnless(HAS_PSK, WHY_SKIPPED)
class PythonHandshakes(unittest.TestCase):
    """Both sides of labc/tls.py, on loopback sockets."""

    def pair(self, client_secret, server_secret, timeout=5.0):
        server, address = listener()
        with server:
            client = socket.create_connection(server.getsockname(), timeout=5)
            accepted, _ = server.accept()
        serving = in_thread(tls.server_side, accepted, server_secret, timeout)
        try:
            secured = tls.client_side(client, client_secret, address)
            client_error = None
        except Exception as error:
            secured, client_error = None, error
        server_side, server_error = serving()
        return secured, client_error, server_side, server_error

    def test_the_same_secret_opens_a_link_keyed_by_the_psk(self):
        client, client_error, server, server_error = self.pair(SECRET, SECRET)
        self.assertIsNone(client_error)
        self.assertIsNone(server_error)
        with client, server:
            for side in (client, server):
                self.assertEqual(side.version(), "TLSv1.3")
                self.assertIn(side.cipher()[0], tls.CIPHERS)
                self.assertTrue(side.session_reused)
                self.assertIsNone(side.getpeercert(binary_form=True))
            client.setblocking(True)
            server.setblocking(True)
            client.sendall(b"ping")
            self.assertEqual(server.recv(4), b"ping")

    def test_another_secret_is_refused_on_both_sides_naming_the_key_ids(self):
        client, client_error, server, server_error = self.pair(OTHER, SECRET)
        self.assertIsInstance(client_error, NotTrustedError)
        self.assertRegex(str(client_error), r"^127\.0\.0\.1:\d+: refused our network secret \(key id 95f588bf07d96e86\): it has another one$")
        self.assertIsInstance(server_error, NotTrustedError)
        self.assertIn("it has another network secret (key id 95f588bf07d96e86; ours is b9e4bd70a60b0e57)", str(server_error))

    def test_a_server_with_a_certificate_instead_of_the_key_is_refused(self):
        openssl = shutil.which("openssl")
        if openssl is None:
            self.skipTest("no openssl command to make a certificate with")
        folder = tempfile.mkdtemp(prefix="labc-tls-")
        self.addCleanup(shutil.rmtree, folder, True)
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=labc-test"],
                       check=True, capture_output=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(cert, key)
        server, address = listener()
        with server:
            client = socket.create_connection(server.getsockname(), timeout=5)
            accepted, _ = server.accept()

        def serve():
            with context.wrap_socket(accepted, server_side=True) as secured:
                secured.recv(1)

        serving = in_thread(serve)
        with self.assertRaises(NotTrustedError) as raised:
            tls.client_side(client, SECRET, address)
        self.assertEqual(str(raised.exception), f"{address}: presented a certificate instead of the network key: it does not hold the secret")
        # Refused inside the handshake (verified against an empty trust store), not after it.
        self.assertIsInstance(raised.exception.__cause__, ssl.SSLCertVerificationError)
        serving()

    def test_a_plain_server_is_named_as_one_without_a_secret(self):
        server, address = listener()
        with server:
            client = socket.create_connection(server.getsockname(), timeout=5)
            accepted, _ = server.accept()
        with accepted:
            accepted.sendall(encode(Kind.EXC, 1, {"name": "BadMessageError", "code": "LABC_BAD_MESSAGE", "message": "not a hello"}))
            with self.assertRaises(NotTrustedError) as raised:
                tls.client_side(client, SECRET, address)
        self.assertIn("answered without TLS: it has no network secret, and this process has one", str(raised.exception))

    def test_a_plain_labc_hello_is_answered_why_before_the_close(self):
        server, _ = listener()
        with server:
            client = socket.create_connection(server.getsockname(), timeout=5)
            accepted, _ = server.accept()
        serving = in_thread(tls.server_side, accepted, SECRET, 5.0)
        with client:
            client.sendall(encode(Kind.HELLO, 9, {"v": 1, "role": "client", "id": "plain", "pid": 1, "host": "", "hostId": ""}))
            reader, frames = FrameReader(1 << 20), []
            while not frames:
                data = client.recv(65536)
                if not data:
                    break
                frames = reader.feed(data)
        _, error = serving()
        kind, _, id, body = frames[0]
        self.assertEqual((kind, id, body["code"], body["name"]), (Kind.EXC, 9, "LABC_NOT_TRUSTED", "NotTrustedError"))
        self.assertIn("this host requires the network secret", body["message"])
        self.assertIsInstance(error, NotTrustedError)
        self.assertIn("it speaks labc without TLS", str(error))

    def test_a_silent_peer_is_refused_at_the_timeout(self):
        server, _ = listener()
        with server:
            client = socket.create_connection(server.getsockname(), timeout=5)
            accepted, _ = server.accept()
        with client:
            with self.assertRaises(NotTrustedError) as raised:
                tls.server_side(accepted, SECRET, 0.3)
        self.assertIn("no TLS handshake within 0.3 s", str(raised.exception))


class WithTypeScript(unittest.TestCase):
    """A TypeScript router and echo server with the secret; Python calls them, serves to them. On
    one host every link is proved by the local proof (labc/local_proof.py), on any Python; TLS on
    loopback, which a server still takes, needs Python 3.13."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="labc-tls-")
        cls.saved = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "LABC_ROUTER_PORT",
                                                    "LABC_DISCOVERY_ENABLED", "LABC_COMMAND", "LABC_ROUTER_LINGER", "LABC_SECRET")}
        os.environ.update({"XDG_CONFIG_HOME": cls.dir, "XDG_STATE_HOME": cls.dir, "XDG_CACHE_HOME": cls.dir,
                           "LABC_ROUTER_PORT": str(free_port()), "LABC_DISCOVERY_ENABLED": "false",
                           "LABC_COMMAND": f"node {CLI}", "LABC_ROUTER_LINGER": "1", "LABC_SECRET": SECRET})
        cls.served = subprocess.Popen(["node", CLI, "serve", os.path.join(REPO, "services", "echo.ts")], cwd=cls.dir,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = cls.served.stdout.readline()
        found = re.search(r"router on port \d+, pid (\d+)", line)
        if not found:
            cls.served.kill()
            raise RuntimeError(f"labc serve did not start: {line!r} {cls.served.stderr.read()}")
        cls.router_pid = int(found.group(1))
        threading.Thread(target=cls.served.stdout.read, daemon=True).start()
        threading.Thread(target=cls.served.stderr.read, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.served.send_signal(signal.SIGTERM)
        try:
            cls.served.wait(10)
        except subprocess.TimeoutExpired:
            cls.served.kill()
            cls.served.wait()
        try:
            os.kill(cls.router_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for key, value in cls.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(cls.dir, ignore_errors=True)

    def cli(self, *args, **env):
        return subprocess.run(["node", CLI, *args], capture_output=True, text=True, timeout=30, cwd=self.dir, env=dict(os.environ, **env))

    def test_python_calls_typescript_on_this_host_with_the_local_proof(self):
        with labc.Runtime() as rt:
            self.assertEqual(rt.call("echo", "proved"), "proved")
            # Plain sockets: the router and the server proved the secret without TLS.
            self.assertNotIsInstance(rt.link.connection.sock, ssl.SSLSocket)
            (link,) = rt.links.connections()
            self.assertNotIsInstance(link.sock, ssl.SSLSocket)
            self.assertEqual(rt.call_with("add", [2, 3]), 5)
            self.assertEqual(rt.call("echo", b"\x00" * 100_000), b"\x00" * 100_000)

    @unittest.skipUnless(HAS_PSK, WHY_SKIPPED)
    def test_tls_to_the_typescript_router_on_loopback_is_still_taken(self):
        port = int(os.environ["LABC_ROUTER_PORT"])
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        with tls.client_side(client, SECRET, f"127.0.0.1:{port}") as secured:
            self.assertTrue(secured.session_reused)
            secured.sendall(encode(Kind.HELLO, 1, {"v": 1, "role": "client", "id": "py-tls", "pid": os.getpid(), "host": "h", "hostId": "h"}))
            reader = FrameReader(1 << 20)
            while True:
                frames = reader.feed(secured.recv(65536))
                if any(frame[0] == Kind.REP and frame[2] == 1 for frame in frames):
                    break

    def test_asyncio_with_the_secret(self):
        import asyncio

        import labc.aio

        async def main(face):
            items = [item async for item in face.stream("echo", "one value")]
            return await asyncio.gather(*(face.call("echo", i) for i in range(200))), items, await face.publish("lab.print", "x")

        with labc.Runtime() as rt:
            echoed, items, reached = asyncio.run(main(labc.aio.AioRuntime(rt)))
        self.assertEqual((echoed, items, reached), (list(range(200)), ["one value"], 1))

    def test_typescript_and_python_call_a_python_server_with_the_secret(self):
        with labc.Runtime() as server:
            server.add_function(lambda a, b: a * b, {}, name="py_tls_times")
            server.serve(block=False)
            done = self.cli("call", "py_tls_times", "6", "7")
            self.assertEqual((done.returncode, done.stdout), (0, "42\n"), done.stderr)
            with labc.Runtime() as caller:
                self.assertEqual(caller.call("py_tls_times", 3, 4), 12)
                (link,) = [c for c in caller.links.connections() if "py-" in c.label]
                self.assertNotIsInstance(link.sock, ssl.SSLSocket)

    def test_stalled_challenges_from_all_of_loopback_leave_a_python_server_callable(self):
        with labc.Runtime() as server:
            server.add_function(lambda: "still here", {}, name="py_tls_flooded")
            server.serve(block=False)
            port = server.server.port
            threads = threading.active_count()
            # 20 addresses of this host, 16 stalled challenges each: what one address was allowed before.
            stalled = []
            for n in range(20):
                for _ in range(16):
                    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(f"127.0.0.{n + 2}", 0))
                    sock.sendall(b"L")
                    stalled.append(sock)
            try:
                done = self.cli("call", "py_tls_flooded")
                self.assertEqual((done.returncode, done.stdout), (0, "still here\n"), done.stderr)
                # All of loopback shares one budget of handshake threads.
                self.assertLessEqual(threading.active_count() - threads, 2 * 16)
            finally:
                for sock in stalled:
                    sock.close()

    def test_another_secret_is_refused_naming_the_router(self):
        with labc.Runtime({"network.secret": OTHER}) as rt:
            with self.assertRaises(NotTrustedError) as raised:
                rt.call("echo", "x")
        self.assertRegex(str(raised.exception), r"^127\.0\.0\.1:\d+: refused our network secret \(key id 95f588bf07d96e86\): it has another one$")

    def test_typescript_with_another_secret_is_refused_by_a_python_server(self):
        with labc.Runtime() as server:
            server.add_function(lambda: "no", {}, name="py_tls_guarded")
            server.serve(block=False)
            port = server.server.port
            done = self.cli("call", "py_tls_guarded", LABC_SECRET=OTHER)
            self.assertNotEqual(done.returncode, 0)
            self.assertIn("LABC_NOT_TRUSTED", done.stderr)
            # Its own port refuses too (the router refused first, above), the local proof and TLS.
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            with self.assertRaises(NotTrustedError) as raised:
                local_proof.client_side(client, tls.network_key(OTHER), f"127.0.0.1:{port}")
            self.assertIn("refused our network secret (key id 95f588bf07d96e86)", str(raised.exception))
            if HAS_PSK:
                client = socket.create_connection(("127.0.0.1", port), timeout=5)
                with self.assertRaises(NotTrustedError):
                    tls.client_side(client, OTHER, f"127.0.0.1:{port}")


if __name__ == "__main__":
    unittest.main()
