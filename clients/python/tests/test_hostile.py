"""Hostile input on the Python server (issue 29): the byte-level attacks of
test/integration/hostile.test.ts, played with raw sockets and frames of our own against a real
Python server process (and a real TypeScript router), with small limits, while well-behaved
callers (this process through labc, and `labc call`) keep calling and must keep getting answers.

Each test fails when the defence it names is taken out. Traffic stays on 127.0.0.0/8: attacks
come from loopback addresses of their own (127.0.0.N), so that per-address limits are felt by
that attacker only and the server's log, which says each limit once per address and minute, says
each. The log's budget is 20 lines at once for all peers (labc/trips.py): attacks that trip the
same limit share an address (BAD_MESSAGE, BAD_FRAME) so that the file stays under it.
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from support import free_port  # below the ephemeral range: a router started there can bind

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PACKAGE))
MiB = 1024 * 1024
VECTORS = os.path.join(REPO, "test", "vectors", "frames.json")

HELLO, REQ, REP, EXC, PUB, PING, PONG = 1, 2, 3, 4, 5, 11, 12
#: Where the peers refused for their messages, and those whose bytes are not frames, come from.
BAD_MESSAGE, BAD_FRAME = "127.0.1.1", "127.0.0.5"

LIMITS = {
    "LABC_LIMITS_HELLO_TIMEOUT": "1",
    "LABC_LIMITS_FRAME_TIMEOUT": "1",
    "LABC_LIMITS_IN_FLIGHT": "64",
    "LABC_LIMITS_QUEUED": str(8 * MiB),
    "LABC_LIMITS_UNSENT": str(1 * MiB),
    "LABC_LIMITS_CONNECTIONS_PER_ADDRESS": "500",
    "LABC_WIRE_MAX_FRAME_SIZE": str(2 * MiB),
    "LABC_LIMITS_PARTIAL_FRAMES": str(8 * MiB),
}

SERVED = '''
import sys, threading, time
import labc

@labc.register
def echo(x):
    return x

@labc.register
def big(n):
    return "x" * n

parks = [0]

@labc.register
def park(ms):
    parks[0] += 1
    time.sleep(ms / 1000)
    return ms

@labc.register
def measure(ms, data):
    time.sleep(ms / 1000)
    return len(data)

@labc.register
def parks_started():
    return parks[0]

@labc.register(name="slowEcho")
def slow_echo(ms, value):
    time.sleep(ms / 1000)
    return value

@labc.subscribe("flood.*")
def flooded(pause, *rest):
    time.sleep(pause)

labc.serve()
'''


# ---- frames of our own (docs/protocol.md "Frame layout"), not labc's codec -------------------

def frame_of(kind, id, body, flags=0):
    data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    return struct.pack(">IBBHII", 12 + len(data), kind, flags, 0, id, len(data)) + data


def hello_body(**extra):
    body = {"v": 1, "role": "client", "id": f"hostile-{os.getpid()}", "pid": os.getpid(), "host": "hostile", "hostId": "hostile"}
    body.update(extra)
    return body


class Peer:
    """One raw connection: sends what it is told, reads frames only when asked to."""

    def __init__(self, port, source="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((source, 0))
        self.sock.settimeout(3)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.frames = []  # (kind, id, body, raw frame)
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def hello(self, id=0, **extra):
        self.send(frame_of(HELLO, id, hello_body(**extra)))

    def _take(self, timeout):
        if self.closed:
            return False
        self.sock.settimeout(max(0.001, timeout))
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            return True
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buffer += chunk
        while len(self.buffer) >= 4:
            (length,) = struct.unpack_from(">I", self.buffer)
            if len(self.buffer) < 4 + length:
                break
            raw, self.buffer = self.buffer[:4 + length], self.buffer[4 + length:]
            kind, _flags, _blobs, id, jlen = struct.unpack_from(">BBHII", raw, 4)
            try:
                body = json.loads(raw[16:16 + jlen])
            except ValueError:
                body = None
            self.frames.append((kind, id, body, raw))
        return True

    def expect(self, match, timeout=3.0):
        """The first frame received that matches, reading for at most ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while True:
            for f in self.frames:
                if match(f):
                    return f
            left = end - time.monotonic()
            if left <= 0 or not self._take(left):
                for f in self.frames:
                    if match(f):
                        return f
                raise AssertionError(f"no matching frame within {timeout} s (closed: {self.closed}; last: {[f[:3] for f in self.frames[-3:]]})")

    def closed_within(self, timeout):
        end = time.monotonic() + timeout
        while not self.closed and time.monotonic() < end:
            self._take(end - time.monotonic())
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+)", f.read(), re.M).group(1))


def rss_mb(pid):
    return status(pid, "VmRSS") / 1024


def wait_for(check, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


class HostileInput(unittest.TestCase):
    """One router, one Python server, one well-behaved Python caller for the whole file."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="labc-pyhostile-")
        cls.router_port = free_port()
        env = dict(os.environ)
        env.update(LIMITS)
        env.update({
            "XDG_CONFIG_HOME": cls.dir,
            "XDG_STATE_HOME": cls.dir,
            "XDG_CACHE_HOME": cls.dir,
            "LABC_ROUTER_PORT": str(cls.router_port),
            "LABC_ROUTER_LINGER": "1",
            "LABC_DISCOVERY_ENABLED": "false",
            "LABC_SERVER_ADDRESS": "127.0.0.1",
            "LABC_SERVER_THREADS": "16",
            "LABC_COMMAND": f"node {os.path.join(REPO, 'bin', 'labc.js')}",
            "PYTHONPATH": PACKAGE,
            "NODE_DEBUG": "",
        })
        cls.env = env
        cls.router = subprocess.Popen(["node", os.path.join(REPO, "bin", "labc.js"), "router", "--port", str(cls.router_port), "--linger", "0"],
                                      env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def listening():
            try:
                socket.create_connection(("127.0.0.1", cls.router_port), 0.2).close()
                return True
            except OSError:
                return cls.router.poll() is not None  # it ended: said below
        wait_for(listening, 15, "the router on its port")
        assert cls.router.poll() is None, "the router ended"
        script = os.path.join(cls.dir, "served.py")
        with open(script, "w") as f:
            f.write(SERVED)
        cls.stderr_path = os.path.join(cls.dir, "server.stderr")
        cls.stderr_file = open(cls.stderr_path, "wb")
        cls.server = subprocess.Popen([sys.executable, script], env=env, cwd=cls.dir, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=cls.stderr_file)
        # The well-behaved caller: this process, through labc, with the same environment.
        for key in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "LABC_ROUTER_PORT", "LABC_DISCOVERY_ENABLED", "LABC_COMMAND", "LABC_SERVER_ADDRESS"):
            os.environ[key] = env[key]
        sys.path.insert(0, PACKAGE)
        import labc

        cls.labc = labc.Runtime({"call.timeout": 5})

        def served():
            for s in cls.labc.servers():
                if s["pid"] == cls.server.pid and any(fn["name"] == "park" for fn in s["functions"]):
                    return s["port"]
            return None

        try:
            cls.port = wait_for(served, 15, "the Python server in labc.servers()")
        except BaseException:
            cls.tearDownClass()
            raise
        cls.pid = cls.server.pid

    @classmethod
    def tearDownClass(cls):
        try:
            cls.labc.close()
        except Exception:
            pass
        for child in (cls.server, cls.router):
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                child.wait(5)
        cls.stderr_file.close()
        if os.environ.get("LABC_TEST_KEEP"):  # the server's log, to read after a failure
            shutil.copy(cls.stderr_path, os.environ["LABC_TEST_KEEP"])
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.peers = []

    def tearDown(self):
        for peer in self.peers:
            peer.close()

    def peer(self, source="127.0.0.1", port=None):
        p = Peer(port or self.port, source)
        self.peers.append(p)
        return p

    def log(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def still_served(self, count=10, bound=3.0):
        """A well-behaved Python caller: each call answered, within ``bound`` seconds."""
        for i in range(count):
            started = time.monotonic()
            self.assertEqual(self.labc.call_with("echo", [f"ok {i}"], timeout=bound), f"ok {i}")
            self.assertLess(time.monotonic() - started, bound)

    def ts_call(self, bound=8.0):
        """The TypeScript caller: `labc call echo`, answered within ``bound`` seconds."""
        out = subprocess.run(["node", os.path.join(REPO, "bin", "labc.js"), "call", "--timeout", "5", "echo", "from ts"],
                             env=self.env, cwd=self.dir, capture_output=True, timeout=bound)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertEqual(out.stdout.decode().strip(), "from ts")

    def assert_logged(self, pattern, source):
        """A trip was logged in one line naming the peer's address."""
        try:
            line = wait_for(lambda: next((l for l in self.log().splitlines() if re.search(pattern, l) and source in l), None), 3, f"a log line matching {pattern} naming {source}")
        except AssertionError as error:
            raise AssertionError(f"{error}; lines naming it: {[l for l in self.log().splitlines() if source in l]}") from None
        self.assertNotRegex(line, r"[\x00-\x08\x0b-\x1f\x7f]")

    # ---- frames that are not labc: the connection closes, nobody else notices ---------------

    def test_garbage_bytes_close_the_connection(self):
        http = self.peer("127.0.0.2")
        http.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # declares a frame of 1.2 GB
        unknown = self.peer(BAD_FRAME)
        unknown.hello()
        unknown.send(struct.pack(">I", 20) + b"\xff" * 20)  # an unknown kind
        self.assertTrue(http.closed_within(2))
        self.assertTrue(unknown.closed_within(2))
        self.assertEqual(http.frames + unknown.frames, [])
        self.still_served(3)
        self.assert_logged(r"max_frame_size tripped by", "127.0.0.2")
        self.assert_logged(r"bad_frame tripped by", BAD_FRAME)

    def test_a_frame_declaring_3_GB_is_refused_at_once_and_nothing_is_buffered(self):
        self.still_served(1)
        before = rss_mb(self.pid)
        huge = self.peer("127.0.0.4")
        huge.hello()
        huge.send(struct.pack(">IBBHII", 3 * 1024 ** 3, REQ, 0, 0, 1, 3 * 1024 ** 3 - 12))
        started = time.monotonic()
        sent = 0
        chunk = b"\0" * (256 * 1024)
        huge.sock.settimeout(0.5)
        try:  # 32 MiB at most, 3 s at most: a server that buffers it would grow by as much
            while sent < 32 * MiB and time.monotonic() - started < 3:
                huge.sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        self.assertTrue(huge.closed_within(2))
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertLess(rss_mb(self.pid) - before, 16)
        self.still_served(3)
        self.assert_logged(r"max_frame_size tripped by", "127.0.0.4")

    def test_lengths_that_do_not_add_up_and_bodies_that_are_not_objects(self):
        cases = {
            "JSON length past the frame": struct.pack(">IBBHII", 20, REQ, 0, 0, 1, 200) + b"{}" + b" " * 6,
            "bytes left after the body": struct.pack(">IBBHII", 12 + 8, REQ, 0, 0, 1, 2) + b"{}" + b"\0" * 6,
            "not JSON": frame_of(REQ, 1, b"{not json"),
            "not an object": frame_of(REQ, 1, b"[1,2,3]"),
            "shorter than a header": struct.pack(">I", 4) + b"\x02\x00\x00\x00",
            "nested past any recursion limit": frame_of(REQ, 1, b'{"fn":"echo","args":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        }
        peers = {}
        for case, frame in cases.items():
            peers[case] = self.peer(BAD_FRAME)
            peers[case].hello()
            peers[case].send(frame)
        for case, peer in peers.items():
            with self.subTest(case):
                self.assertTrue(peer.closed_within(2))
                self.assertEqual(peer.frames, [])
        self.assert_logged(r"bad_frame tripped by", BAD_FRAME)
        self.still_served(3)

    # ---- messages that do not fit their kind (docs/protocol.md#refusals) ----------------------

    def refusal(self, name):
        with open(VECTORS, encoding="utf-8") as f:
            return next(r for r in json.load(f)["refusals"] if r["name"] == name)

    def play(self, refusal, source):
        """Sends a refusal vector's frames; returns the peer and the answer frame (raw) or None."""
        peer = self.peer(source)
        for hex in refusal["before"]:
            peer.send(bytes.fromhex(hex))
        time.sleep(0.05)
        sent = bytes.fromhex(refusal["sent"])
        peer.send(sent)
        (id,) = struct.unpack_from(">I", sent, 8)
        if refusal["answer"] is None:
            return peer, None
        return peer, peer.expect(lambda f: f[1] == id and f[0] != REP)[3]

    def test_refusals_answer_the_same_bytes_as_the_typescript_side(self):
        with open(VECTORS, encoding="utf-8") as f:
            refusals = json.load(f)["refusals"]
        self.assertGreater(len(refusals), 5)
        for refusal in refusals:
            with self.subTest(refusal["name"]):
                peer, answer = self.play(refusal, BAD_MESSAGE)
                if refusal["answer"] is None:
                    self.assertTrue(peer.closed_within(2))
                    self.assertEqual(peer.frames, [])
                    continue
                self.assertEqual(answer.hex(), refusal["answer"], f"{answer[16:]!r} is not {bytes.fromhex(refusal['answer'])[16:]!r}")
                if refusal["closes"]:
                    self.assertTrue(peer.closed_within(2))
                else:  # the connection stays: it is still served
                    peer.send(frame_of(REQ, 99, {"fn": "echo", "args": ["still here"]}))
                    self.assertEqual(peer.expect(lambda f: f[1] == 99)[2], {"v": "still here"})
        self.still_served(3)

    def test_a_req_before_hello_closes_the_connection_unanswered(self):
        rude = self.peer(BAD_MESSAGE)
        rude.send(frame_of(REQ, 1, {"fn": "echo", "args": ["no hello"]}))
        self.assertTrue(rude.closed_within(2))
        self.assertEqual(rude.frames, [])
        self.assert_logged(r"bad_message tripped by", BAD_MESSAGE)

    def test_hello_of_version_2_is_answered_then_closed(self):
        peer = self.peer(BAD_MESSAGE)
        peer.send(frame_of(HELLO, 7, hello_body(v=2)))
        kind, id, body, _raw = peer.expect(lambda f: f[1] == 7)
        self.assertEqual((kind, body["code"], body["message"]), (EXC, "LABC_BAD_ARGUMENTS", "protocol version 2 is not 1"))
        self.assertTrue(peer.closed_within(2))

    def test_a_bad_req_is_answered_and_the_connection_stays_a_duplicate_id_is_refused(self):
        careless = self.peer(BAD_MESSAGE)
        careless.hello()
        careless.send(frame_of(REQ, 1, {"fn": 42, "args": []}))
        careless.send(frame_of(REQ, 2, {"fn": "park", "args": [300]}))
        careless.send(frame_of(REQ, 2, {"fn": "echo", "args": ["second"]}))
        first = careless.expect(lambda f: f[1] == 1)
        self.assertEqual((first[0], first[2]["code"], first[2]["message"]), (EXC, "LABC_BAD_MESSAGE", "bad req message: fn must be a string"))
        refused = careless.expect(lambda f: f[1] == 2 and f[0] == EXC)
        self.assertRegex(refused[2]["message"], "already in use")
        self.assertEqual(careless.expect(lambda f: f[1] == 2 and f[0] == REP)[2], {"v": 300})
        self.assertFalse(careless.closed)
        self.still_served(3)

    # ---- peers that hold the server's resources ------------------------------------------------

    def test_slowloris_a_frame_one_byte_a_second_and_connections_that_never_say_hello(self):
        trickling = [self.peer("127.0.0.13") for _ in range(20)]
        for p in trickling:
            p.hello()
        silent = [self.peer("127.0.0.14") for _ in range(20)]
        frame = frame_of(PING, 1, {})
        started = time.monotonic()
        for at in range(4):  # one byte a second: a frame of 16 bytes would take 16 s
            for p in trickling:
                try:
                    p.send(frame[at:at + 1])
                except OSError:
                    pass
            self.still_served(2, bound=1.0)
            time.sleep(max(0.0, started + at + 1 - time.monotonic()))
        self.assertTrue(all(p.closed_within(0.5) for p in trickling + silent))
        self.assertLess(time.monotonic() - started, 5)
        self.assertTrue(all(p.frames == [] for p in trickling + silent))
        self.assert_logged(r"frame_timeout tripped by", "127.0.0.13")
        self.assert_logged(r"hello_timeout tripped by", "127.0.0.14")

    def test_a_flood_of_2000_idle_connections_costs_no_thread_and_past_the_cap_is_closed_at_once(self):
        self.still_served(3)
        threads = status(self.pid, "Threads")
        before = rss_mb(self.pid)
        flood = []
        for n in range(2000):  # two addresses: 500 each are let in (the cap), the others closed at once
            flood.append(Peer(self.port, "127.0.0.15" if n % 2 else "127.0.0.16"))
        self.peers.extend(flood)
        self.still_served(5, bound=2.0)
        self.ts_call()
        self.assertLessEqual(status(self.pid, "Threads"), threads + 1)
        self.assertLess(rss_mb(self.pid) - before, 40)
        closed_at_once = sum(p.closed_within(0.001) for p in flood)
        self.assertGreaterEqual(closed_at_once, 900)
        # The hello timeout (1 s) ends the others.
        self.assertTrue(all(p.closed_within(3) for p in flood))
        self.still_served(3)
        self.assert_logged(r"connections_per_address tripped by", "127.0.0.15")
        self.assert_logged(r"connections_per_address tripped by", "127.0.0.16")

    def test_callers_that_said_hello_do_not_count_against_the_cap_per_address(self):
        # A host's own processes, however many, say hello at once: 700 of them from one address
        # (the cap is 500) all stay; then 600 idle ones cut only the oldest idle ones.
        greeted = []
        for _ in range(700):  # each says hello at once, as a process does (700 silent would be the cap's case)
            peer = Peer(self.port, "127.0.0.17")
            peer.hello()
            greeted.append(peer)
        self.peers.extend(greeted)
        time.sleep(0.3)
        idle = [Peer(self.port, "127.0.0.17") for _ in range(600)]
        self.peers.extend(idle)
        time.sleep(0.3)
        self.assertFalse(any(p.closed_within(0) for p in greeted))
        self.assertGreaterEqual(sum(p.closed_within(0.5) for p in idle[:100]), 100)
        self.assertFalse(any(p.closed_within(0) for p in idle[-400:]))
        self.still_served(3)

    def flood(self, peer, next_frame, most_bytes, seconds=4.0):
        """Writes ``next_frame()``'s frames to ``peer`` as fast as its socket takes them, until
        ``most_bytes`` are written, ``next_frame()`` gives None, ``seconds`` pass, or the server
        has taken nothing of it for a second (it stopped reading it). Returns the bytes written,
        whether the server stopped reading, its highest RSS (MB) meanwhile and the seconds taken."""
        peer.sock.setblocking(False)
        written, unsent, started, blocked_at = 0, b"", time.monotonic(), None
        peak = rss_mb(self.pid)
        while written < most_bytes and time.monotonic() - started < seconds:
            try:
                unsent = unsent or next_frame()
                if unsent is None:
                    break
                n = peer.sock.send(unsent)
                unsent, written = unsent[n:], written + n
                blocked_at = None
            except BlockingIOError:
                blocked_at = blocked_at or time.monotonic()
                if time.monotonic() - blocked_at > 1.0:
                    break  # the server stopped reading it for a second: paused
                time.sleep(0.01)
            peak = max(peak, rss_mb(self.pid))
        return written, blocked_at is not None, peak, time.monotonic() - started

    def peak_rss_during(self, seconds, until=lambda: False):
        """The server's highest RSS (MB) sampled over ``seconds`` (or until ``until()``)."""
        peak = rss_mb(self.pid)
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            peak = max(peak, rss_mb(self.pid))
            time.sleep(0.02)
        return max(peak, rss_mb(self.pid))

    def test_a_caller_that_never_reads_its_large_answers_is_closed_memory_bounded(self):
        self.still_served(1)
        before = rss_mb(self.pid)
        greedy = self.peer("127.0.0.17")
        greedy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        greedy.hello()
        greedy.sock.setblocking(False)
        sent, next_id, started = 0, 1, time.monotonic()
        peak = before
        # Thousands of requests for 512 kB each, 32 at a time (under limits.in_flight), never read.
        unsent = b""
        while next_id <= 4000 and time.monotonic() - started < 6:
            if not unsent:
                unsent = b"".join(frame_of(REQ, next_id + i, {"fn": "big", "args": [512 * 1024]}) for i in range(32))
                next_id += 32
            try:
                unsent = unsent[greedy.sock.send(unsent):]
            except BlockingIOError:
                pass
            except OSError:
                break  # closed by the server
            peak = max(peak, self.peak_rss_during(0.03))
        greedy.sock.setblocking(True)
        self.assertTrue(greedy.closed_within(3), f"{next_id - 1} requests sent in {time.monotonic() - started:.1f} s")
        peak = max(peak, rss_mb(self.pid))
        self.assertLess(peak - before, 80)
        self.still_served(5)
        self.ts_call()
        self.assert_logged(r"queued tripped by", "127.0.0.17")

    def test_10000_requests_in_flight_on_one_connection(self):
        self.still_served(1)
        before = rss_mb(self.pid)
        eager = self.peer("127.0.0.18")
        eager.hello()
        eager.send(b"".join(frame_of(REQ, id, {"fn": "park", "args": [50]}) for id in range(1, 10_001)))
        self.still_served(3, bound=3.0)
        end = time.monotonic() + 10
        while len({f[1] for f in eager.frames}) < 10_000 and time.monotonic() < end and eager._take(end - time.monotonic()):
            pass
        answers = {}
        for kind, id, body, _raw in eager.frames:
            answers.setdefault(kind, []).append(body)
        self.assertEqual(len(answers.get(REP, [])) + len(answers.get(EXC, [])), 10_000)
        self.assertLess(len(answers.get(REP, [])), 1000)  # limits.in_flight is 64 here
        self.assertEqual({(b["code"], b["message"]) for b in answers[EXC]}, {("LABC_LIMIT", "limit in_flight: more than 64 requests at once")})
        self.assertFalse(eager.closed)
        self.assertLess(rss_mb(self.pid) - before, 40)
        self.assert_logged(r"in_flight tripped by", "127.0.0.18")

    def test_a_publication_flood_faster_than_its_subscriber_pauses_that_connection_only(self):
        self.still_served(1)
        before = rss_mb(self.pid)
        flooder = self.peer("127.0.0.19")
        flooder.hello()
        batch = frame_of(PUB, 0, {"topic": "flood.x", "args": [0.001, "x" * 1000]}) * 64
        # 200 MB of publications at most, 4 s at most, as fast as the socket takes them.
        written, paused, peak, took = self.flood(flooder, lambda: batch, 200 * MiB)
        peak = max(before, peak)
        self.assertTrue(paused, f"{written} bytes taken in {took:.1f} s")
        self.assertLess(written, 100 * MiB)
        self.still_served(5, bound=2.0)
        self.ts_call()
        peak = max(peak, self.peak_rss_during(0.5))
        self.assertLess(peak - before, 60)
        # Paused, not dropped: a publisher held back mid-frame is not timed out (frame_timeout is 1 s).
        self.assertFalse(flooder.closed_within(1.5))

    def test_what_a_log_line_quotes_of_a_peer_is_escaped(self):
        # A subscriber that fails on a topic the peer chose: its warning quotes the topic.
        publisher = self.peer("127.0.0.21")
        publisher.hello()
        publisher.send(frame_of(PUB, 0, {"topic": "flood.\x1b[31m\nlabc: forged\u202e\x07", "args": []}))
        wait_for(lambda: "forged" in self.log(), 3, "the subscriber's failure logged")
        for line in self.log().splitlines():
            self.assertNotRegex(line, "[\x00-\x08\x0b-\x1f\x7f\u202e]")
            self.assertFalse(line.startswith("labc: forged"), line)
        self.assertIn(r"flood.\x1b[31m\nlabc: forged\u202e\x07", self.log())

    def test_many_connections_holding_large_partial_frames_cannot_add_up_past_the_budget(self):
        self.still_served(1)
        before = rss_mb(self.pid)
        hoarders = [self.peer("127.0.0.22") for _ in range(10)]
        for p in hoarders:
            p.hello()
            p.send(struct.pack(">I", 2 * MiB - 64) + b"\x07" * (MiB + MiB // 2))  # 1.5 MiB of a frame of 2 MiB
        time.sleep(0.5)  # under the frame timeout (1 s): only the budget (8 MiB) closes some
        closed = sum(p.closed_within(0.01) for p in hoarders)
        self.assertGreaterEqual(closed, 4)
        self.assertLess(closed, 10)
        self.assertLess(rss_mb(self.pid) - before, 40)
        self.still_served(3)
        self.assertTrue(all(p.closed_within(2) for p in hoarders))  # the frame timeout: the others
        self.assert_logged(r"partial_frames tripped by", "127.0.0.22")

    def test_a_steady_stream_of_whole_frames_is_not_taken_for_slowloris(self):
        # Not an attack: frames back to back for longer than the frame timeout (1 s), each read
        # ending mid-frame. The clock is each frame's, not the stream's.
        steady = self.peer("127.0.0.24")
        steady.hello()
        # Frames of 1000 bytes sent 999 at a time: a read ends on a frame's end once in 1000.
        frames = [frame_of(REQ, id, {"fn": "echo", "args": [str(id)]}) for id in range(1, 3001)]
        stream = b"".join(f + b"" for f in (frame_of(REQ, id, {"fn": "echo", "args": [str(id).ljust(1000 - len(f) + len(str(id)))]}) for id, f in enumerate(frames, 1)))
        self.assertEqual(len(stream), 3000 * 1000)
        at, started = 0, time.monotonic()
        while time.monotonic() - started < 2.5 and at < len(stream):
            steady.send(stream[at:at + 999])
            at += 999
            time.sleep(0.002)
            steady._take(0.001)
        self.assertGreater(time.monotonic() - started, 2.0)
        self.assertGreater(at, 600_000)
        steady.expect(lambda f: f[1] == at // 1000, timeout=5)  # the last whole one is answered
        self.assertFalse(steady.closed)

    # ---- peers that take the server's threads ------------------------------------------------

    def test_callers_that_fill_the_thread_pool_do_not_make_others_wait_their_turn(self):
        # 4 connections x 64 calls of 1 s (limits.in_flight each) on 16 threads: 16 s of work.
        hogs = [self.peer("127.0.0.25") for _ in range(4)]
        for hog in hogs:
            hog.hello()
            hog.send(b"".join(frame_of(REQ, id, {"fn": "park", "args": [1000]}) for id in range(1, 65)))
        time.sleep(0.3)
        self.still_served(3, bound=2.0)  # each caller takes its turn: at most a call of 1 s ahead
        self.ts_call(bound=8.0)
        for hog in hogs:
            hog.close()

    def test_calls_of_a_caller_that_left_are_not_run(self):
        # Hit and run: requests, then the connection closed at once, again and again.
        before = self.labc.call("parks_started")
        for _ in range(20):
            runner = self.peer("127.0.0.26")
            runner.hello()
            runner.send(b"".join(frame_of(REQ, id, {"fn": "park", "args": [1000]}) for id in range(1, 65)))
            runner.close()
        time.sleep(1.2)  # those that had started end
        settled = self.labc.call("parks_started")
        self.assertLess(settled - before, 200)
        time.sleep(1.5)
        self.assertEqual(self.labc.call("parks_started"), settled)  # nothing more of theirs runs
        self.still_served(3)

    def test_many_calls_waiting_do_not_make_each_new_request_cost_more(self):
        # 200 connections x 64 calls waiting (limits.in_flight each): 12,800 calls; then 10,000
        # requests on one more. Counting a connection's calls must not go through all of them.
        holders = [self.peer("127.0.0.27") for _ in range(200)]
        for holder in holders:
            holder.hello()
            holder.send(b"".join(frame_of(REQ, id, {"fn": "park", "args": [1000]}) for id in range(1, 65)))
        spam = self.peer("127.0.0.28")
        spam.hello()
        time.sleep(0.3)
        started = time.monotonic()
        spam.send(b"".join(frame_of(REQ, id, {"fn": "echo", "args": [id]}) for id in range(1, 10_001)))
        spam.expect(lambda f: f[1] == 10_000, timeout=10)
        self.assertLess(time.monotonic() - started, 2.0)
        self.still_served(3, bound=2.0)
        for holder in holders:
            holder.close()

    def test_a_flood_of_large_publications_is_paused_by_their_bytes(self):
        self.still_served(1)
        before = rss_mb(self.pid)
        flooder = self.peer("127.0.0.29")
        flooder.hello()
        pub = frame_of(PUB, 0, {"topic": "flood.big", "args": [0.2, "x" * (MiB + MiB // 2)]})  # 1.5 MB, 0.2 s each
        written, paused, peak, took = self.flood(flooder, lambda: pub, 400 * MiB)  # 400 MB at most
        peak = max(before, peak)
        self.assertTrue(paused, f"{written} bytes taken in {took:.1f} s")
        self.still_served(3, bound=2.0)
        self.assertLess(max(peak, rss_mb(self.pid)) - before, 80, f"{written / MiB:.0f} MB taken")
        self.assertFalse(flooder.closed_within(0.5))

    def test_requests_with_large_arguments_waiting_for_threads_are_bounded_by_their_bytes(self):
        self.still_served(1)
        before = rss_mb(self.pid)
        heavy = self.peer("127.0.0.30")
        heavy.hello()
        big = "x" * (MiB + MiB // 2)
        # Calls of 1 s, each with 1.5 MB of arguments, under limits.in_flight (64): 96 MB if all taken.
        requests = (frame_of(REQ, id, {"fn": "measure", "args": [1000, big]}) for id in range(1, 65))
        written, paused, peak, took = self.flood(heavy, lambda: next(requests, None), 200 * MiB)
        peak = max(before, peak)
        self.assertTrue(paused, f"{written / MiB:.0f} MB taken in {took:.1f} s")
        self.still_served(3, bound=2.0)
        peak = max(peak, self.peak_rss_during(0.5))
        self.assertLess(peak - before, 60, f"{written / MiB:.0f} MB taken, +{peak - before:.0f} MB")
        heavy.sock.setblocking(True)
        self.assertEqual(heavy.expect(lambda f: f[1] == 1, timeout=5)[2], {"v": len(big)})  # served, at its pace
        self.assertFalse(heavy.closed)
