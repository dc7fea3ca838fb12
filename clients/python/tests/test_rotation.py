"""A rotation of the network secret (``labc secret rotate``) followed by Python processes
(labc/rotation.py, docs/security.md#key-handling-and-rotation): the record read, and refused when
others may read it; the keys offered and taken during and after the window; and, on Python 3.13
or newer, a real TypeScript router and server with Python servers and callers across a rotation."""

import json
import os
import socket
import ssl
import sys
import threading
import time
import unittest

import support
from support import WorldTestCase, within

from labc import rotation, tls
from labc.dial import dial
from labc.errors import ConfigError, NotTrustedError

HAS_PSK = sys.version_info >= (3, 13) and getattr(ssl, "HAS_PSK", False)
WHY_SKIPPED = "TLS with an external PSK needs Python 3.13's ssl (SSLContext.set_psk_client_callback); run this file with python3.13"
OLD = "labc1_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
NEW = "labc1_-_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
WINDOW_S = 10  # room for the checks of the window on a loaded machine


def write_private(path: str, text: str, mode: int = 0o600) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(path, mode)


def read(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read().strip()


class Folder(unittest.TestCase):
    """A config folder of its own, and a record in it."""

    def setUp(self):
        import tempfile

        self.folder = tempfile.mkdtemp(prefix="labc-rotation-")
        self.addCleanup(__import__("shutil").rmtree, self.folder, True)

    def record(self, until_ms: float, origin: str = OLD, mode: int = 0o600) -> None:
        record = {"next": NEW, "from": tls.network_key(origin).id, "until": int(until_ms), "by": "h", "at": 0}
        write_private(rotation.rotation_file(self.folder), json.dumps(record) + "\n", mode)


class Record(Folder):
    """The record and the keys it gives, without a network (any Python)."""

    def test_without_a_record_the_secret_alone(self):
        ring = rotation.KeyRing(OLD, self.folder)
        ring.look()
        self.assertEqual([k.id for k in ring.dial_order()], [tls.network_key(OLD).id])
        self.assertIsNone(ring.next_id)

    def test_during_the_window_next_first_and_either_taken(self):
        self.record(time.time() * 1000 + 60_000)
        ring = rotation.KeyRing(OLD, self.folder)
        ring.look()
        old, new = tls.network_key(OLD), tls.network_key(NEW)
        self.assertEqual(ring.dial_order(), [new, old])
        self.assertEqual((ring.psk_for(old.identity), ring.psk_for(new.identity)), (old.psk, new.psk))
        self.assertIsNone(ring.psk_for("labc1 0000000000000000"))
        self.assertEqual((ring.id, ring.next_id, ring.secret_text()), (old.id, new.id, OLD))

    def test_after_the_window_the_next_alone_and_the_secret_file_rewritten(self):
        write_private(os.path.join(self.folder, "secret"), OLD + "\n")
        self.record(time.time() * 1000 - 1)
        ring = rotation.KeyRing(OLD, self.folder)
        ring.look()
        old, new = tls.network_key(OLD), tls.network_key(NEW)
        self.assertEqual(ring.dial_order(), [new])
        self.assertIsNone(ring.psk_for(old.identity))
        self.assertEqual((ring.id, ring.secret_text(), ring.retired), (new.id, NEW, old))
        with open(os.path.join(self.folder, "secret"), encoding="utf-8") as file:
            self.assertEqual(file.read(), NEW + "\n")
        self.assertEqual(os.stat(os.path.join(self.folder, "secret")).st_mode & 0o777, 0o600)

    def test_the_window_ends_on_time_without_another_look(self):
        self.record(time.time() * 1000 + 300)
        ring = rotation.KeyRing(OLD, self.folder)
        ring.look()
        self.assertEqual(len(ring.dial_order()), 2)
        time.sleep(0.35)
        self.assertEqual(ring.dial_order(), [tls.network_key(NEW)])

    def test_a_rotation_of_another_secret_changes_nothing(self):
        self.record(time.time() * 1000 + 60_000, origin=NEW)
        ring = rotation.KeyRing(OLD, self.folder)
        ring.look()
        self.assertEqual(ring.dial_order(), [tls.network_key(OLD)])

    def test_a_record_others_may_read_is_refused(self):
        self.record(time.time() * 1000 + 60_000, mode=0o644)
        ring = rotation.KeyRing(OLD, self.folder)
        with self.assertRaises(ConfigError) as raised:
            ring.look()
        self.assertIn("other users can read this file, which holds a secret: run `chmod 600", str(raised.exception))
        self.assertNotIn(NEW, str(raised.exception))
        self.assertEqual(ring.dial_order(), [tls.network_key(OLD)])

    def test_a_new_record_is_noticed_within_2_s_and_not_looked_for_more_often(self):
        ring = rotation.KeyRing(OLD, self.folder)
        ring.look()
        self.record(time.time() * 1000 + 60_000)
        ring.look()
        self.assertIsNone(ring.next_id)  # looked less than LOOK_EVERY_S ago
        ring._looked -= rotation.LOOK_EVERY_S
        ring.look()
        self.assertEqual(ring.next_id, tls.network_key(NEW).id)


class DialFallsBack(Folder):
    """A peer without the next key refuses it; the dial offers the current one on a new
    connection: by the local proof on loopback (any Python), and over TLS (3.13 and later)."""

    def fall_back(self, local_proof: bool):
        self.record(time.time() * 1000 + 60_000)
        ring = rotation.KeyRing(OLD, self.folder)
        ring.local_proof = local_proof
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        outcomes = []

        def serve():
            for _ in range(2):
                accepted, _ = server.accept()
                try:
                    outcomes.append(tls.server_side(accepted, OLD, 5.0))
                except NotTrustedError as error:
                    outcomes.append(error)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with server:
            sock = dial("127.0.0.1", server.getsockname()[1], 5.0, ring)
            thread.join(10)
        with sock:
            self.assertIsInstance(outcomes[0], NotTrustedError)
            self.assertIn(f"it has another network secret (key id {tls.network_key(NEW).id}", str(outcomes[0]))
            self.assertIsInstance(outcomes[1], socket.socket)
            self.assertEqual(isinstance(sock, ssl.SSLSocket), not local_proof)
            self.assertEqual(isinstance(outcomes[1], ssl.SSLSocket), not local_proof)
            outcomes[1].close()

    def test_on_loopback_by_the_local_proof(self):
        self.fall_back(local_proof=True)

    @unittest.skipUnless(HAS_PSK, WHY_SKIPPED)
    def test_over_tls(self):
        self.fall_back(local_proof=False)


SERVER = """
import time, labc
rt = labc.Runtime()
rt.add_function(lambda a, b: a * b, {}, name="py_rot_times")
rt.serve(block=False)
print("port", rt.server.port, flush=True)
while True:
    time.sleep(1)
"""

#: Calls TS and Python for argv[1] seconds: on its first runtime's links, and on new links of a
#: fresh runtime every third round (each dials with the keys of the moment).
CALLER = """
import json, sys, time, labc
end = time.monotonic() + float(sys.argv[1])
counts = {"rounds": 0, "fresh": 0, "errors": []}
with labc.Runtime() as rt:
    print("ready", flush=True)
    while time.monotonic() < end:
        i = counts["rounds"] = counts["rounds"] + 1
        try:
            if rt.call("echo", i) != i or rt.call("py_rot_times", i, 2) != 2 * i:
                counts["errors"].append(f"{i}: wrong answer")
        except Exception as error:
            counts["errors"].append(f"{i}: {error!r}")
        if i % 3 == 0:
            try:
                with labc.Runtime() as fresh:
                    if fresh.call("echo", i) == i and fresh.call("py_rot_times", i, 3) == 3 * i:
                        counts["fresh"] += 1
            except Exception as error:
                counts["errors"].append(f"fresh {i}: {error!r}")
        time.sleep(0.1)
print(json.dumps(counts), flush=True)
"""

ONCE = """
import labc
with labc.Runtime() as rt:
    print(rt.call("echo", "e"), rt.call("py_rot_times", 6, 7), flush=True)
"""


@unittest.skipUnless(HAS_PSK, WHY_SKIPPED)
class WithTypeScript(WorldTestCase):
    """A TypeScript router and echo server, a Python server and a Python caller, all started with
    the old secret (in the secret file), across `labc secret rotate --window 10s`."""

    @classmethod
    def setUpWorld(cls):
        cls.folder = os.path.join(cls.world.dir, "config", "labc")
        os.makedirs(cls.folder, exist_ok=True)
        write_private(os.path.join(cls.folder, "secret"), OLD + "\n")
        cls.world.ts_serve("services/echo.ts")
        cls.world.note_router()

    def raw(self, port: int, secret: str) -> None:
        """A TLS client of its own offering ``secret`` alone: returns once the handshake held."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        tls.client_side(sock, secret, f"127.0.0.1:{port}").close()

    def test_python_processes_follow_the_rotation(self):
        world = self.world
        server = world.python_start(SERVER, ready="port ")
        port = int(server.output().split("port ")[1].split()[0])
        # The caller has the secret in its environment: each of its runtimes, new ones after the
        # window too, starts from the old secret, and the record alone moves it on.
        caller = world.python_start(CALLER, str(WINDOW_S + 10), ready="ready", env={"LABC_SECRET": OLD})
        time.sleep(1.5)
        rotated = world.cli("secret", "rotate", "--window", f"{WINDOW_S}s")
        started = time.monotonic()
        self.assertEqual(rotated.code, 0, rotated.output)
        with open(rotation.rotation_file(self.folder), encoding="utf-8") as file:
            record = json.load(file)
        self.assertEqual(os.stat(rotation.rotation_file(self.folder)).st_mode & 0o077, 0)
        new = record["next"]
        self.assertIn(f"to {tls.network_key(new).id}", rotated.output)

        # During the window: the Python server takes either key (once it looked, within 2 s).
        time.sleep(rotation.LOOK_EVERY_S + 0.2)
        self.raw(port, OLD)
        self.raw(port, new)
        called = world.cli("call", "py_rot_times", "6", "7")
        self.assertEqual((called.code, called.output), (0, "42\n"))
        during = world.python_run(ONCE)
        self.assertEqual((during.code, during.output), (0, "e 42\n"))
        self.assertLess(time.monotonic() - started, WINDOW_S - 1, "the checks of the window took longer than it")

        # After the window: the new key only, and the secret file holds it.
        time.sleep(max(0.0, started + WINDOW_S + 3 - time.monotonic()))
        with self.assertRaises(NotTrustedError) as refused:
            self.raw(port, OLD)
        self.assertIn("refused our network secret", str(refused.exception))
        self.raw(port, new)
        within(10, "the secret file rewritten", lambda: read(os.path.join(self.folder, "secret")) == new)
        called = world.cli("call", "py_rot_times", "5", "7")
        self.assertEqual((called.code, called.output), (0, "35\n"))
        for env in ({}, {"LABC_SECRET": OLD}):  # the secret file's (new) secret, or the old one and the record
            after = world.python_run(ONCE, env=env)
            self.assertEqual((after.code, after.output), (0, "e 42\n"))

        # The caller, started before the rotation, never failed, on old links or new ones.
        self.assertEqual(caller.wait(support.READY_S), 0, caller.output())
        counts = json.loads(caller.lines()[-1])
        self.assertEqual(counts["errors"], [])
        self.assertGreater(counts["rounds"], 30)
        self.assertEqual(counts["fresh"], counts["rounds"] // 3)
        self.assertTrue(server.running, server.output())


if __name__ == "__main__":
    unittest.main()
