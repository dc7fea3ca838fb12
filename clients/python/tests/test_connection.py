"""One connection on a real loopback socket, with no router: a caller reading its own answer
(``claim_reading``, ``wait``), and what comes after it, which the loop must read without a caller."""

import socket
import threading
import time
import unittest

import support  # noqa: F401  (puts this checkout's labc first on sys.path)
from labc.connection import Connection
from labc.frames import FrameReader, Kind, encode
from labc.io_loop import shared_loop
from labc.waiter import Waiter


class CallerReads(unittest.TestCase):
    def setUp(self):
        listener = socket.create_server(("127.0.0.1", 0))
        ours = socket.create_connection(listener.getsockname())
        self.peer, _ = listener.accept()
        listener.close()
        self.peer.settimeout(5)
        self.notices = []
        self.noticed = threading.Event()

        def handler(connection, kind, flags, id, body):
            self.notices.append((kind, time.monotonic()))
            self.noticed.set()

        self.connection = Connection(shared_loop(), ours, "test peer", handler)
        self.addCleanup(self.peer.close)
        self.addCleanup(self.connection.close)
        self.reader = FrameReader()

    def received(self):
        """The next frame the peer got: (kind, flags, id, body)."""
        frames = []
        while not frames:
            frames = self.reader.feed(self.peer.recv(65536))
        self.assertEqual(len(frames), 1)
        return frames[0]

    def request_and_answer(self, value):
        waiter = Waiter("f", "test peer")
        claimed = self.connection.claim_reading()
        id = self.connection.request(Kind.REQ, {"fn": "f", "args": [value], "timeoutMs": 1000}, waiter)
        self.assertEqual(self.received()[3]["args"], [value])
        self.peer.sendall(encode(Kind.REP, id, {"v": value}))
        self.assertTrue(self.connection.wait(waiter, 2, claimed))
        return claimed, waiter.value

    def test_the_caller_reads_its_answer_and_the_loop_reads_what_comes_after_at_once(self):
        for n in range(20):
            claimed, value = self.request_and_answer(n)
            self.assertTrue(claimed)
            self.assertEqual(value, n)
        # Nobody calls now: a notice (a leaving server's) is the loop's to read, in milliseconds,
        # not at its next tick (the socket stays parked for a moment after a caller read it).
        for _ in range(3):
            self.noticed.clear()
            sent = time.monotonic()
            self.peer.sendall(encode(Kind.DEATH, 0, {}))
            self.assertTrue(self.noticed.wait(2), "the loop did not read the notice")
            self.assertLess(self.notices[-1][1] - sent, 0.1)
            time.sleep(0.05)
            self.assertEqual(self.request_and_answer("again")[1], "again")

    def test_a_request_nobody_reads_for_after_a_callers_answer_is_answered_at_once(self):
        self.request_and_answer(1)
        # A stream's request, or the asyncio face's: the loop reads its answer.
        for n in range(3):
            waiter = Waiter("f", "test peer")
            id = self.connection.request(Kind.REQ, {"fn": "f", "args": [], "timeoutMs": 1000}, waiter)
            self.assertEqual(self.received()[2], id)
            sent = time.monotonic()
            self.peer.sendall(encode(Kind.REP, id, {"v": n}))
            self.assertTrue(waiter.wait(2))
            self.assertLess(time.monotonic() - sent, 0.1)
            self.assertEqual(waiter.value, n)
            self.request_and_answer(n)

    def test_a_notice_read_by_the_caller_is_handed_to_the_loop(self):
        waiter = Waiter("f", "test peer")
        claimed = self.connection.claim_reading()
        id = self.connection.request(Kind.REQ, {"fn": "f", "args": [], "timeoutMs": 1000}, waiter)
        self.assertEqual(self.received()[2], id)
        self.peer.sendall(encode(Kind.DEATH, 0, {}) + encode(Kind.REP, id, {"v": 7}))
        self.assertTrue(self.connection.wait(waiter, 2, claimed))
        self.assertEqual(waiter.value, 7)
        self.assertTrue(self.noticed.wait(2))
        self.assertEqual(self.request_and_answer(8)[1], 8)


if __name__ == "__main__":
    unittest.main()
