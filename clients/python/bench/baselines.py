"""The Python baselines of the benchmark, each half in a process of its own: a raw socket echo and
publisher/subscriber with labc's frame layout (the limit), the standard library's xmlrpc and
multiprocessing.connection (what a Python user would pick without labc).

Raw is written as a careful engineer writes it: TCP_NODELAY, a read of up to 64 KiB split into
every whole frame it holds (frames split or joined anywhere), the answers of one read written in
one ``sendall``, JSON decoded and encoded on both sides; 100 calls in flight are pipelined on one
socket from one thread (no thread switch at all), publications written in batches of 1000.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from typing import Callable, List, Tuple

# labc's layout: u32 length, kind u8, flags u8, binary parts u16, id u32, JSON length u32, JSON.
HEAD = struct.Struct(">IBBHII")
REQ, REP, PUB = 2, 3, 5
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


def frame(kind: int, id: int, body) -> bytes:
    data = _dumps(body).encode()
    return HEAD.pack(12 + len(data), kind, 0, 0, id, len(data)) + data


class Splitter:
    """Whole frames out of a byte stream: (kind, id, body) each."""

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, data: bytes) -> List[Tuple[int, int, object]]:
        buf = self.rest + data if self.rest else data
        out = []
        pos, n = 0, len(buf)
        unpack = HEAD.unpack_from
        while n - pos >= 16:
            length, kind, _flags, _blobs, id, jlen = unpack(buf, pos)
            end = pos + 4 + length
            if end > n:
                break
            out.append((kind, id, _loads(buf[pos + 16:pos + 16 + jlen])))
            pos = end
        self.rest = buf[pos:]
        return out


def _nodelay(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _accepting(port: int, serve_one: Callable[[socket.socket], None]) -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)

    def accept() -> None:
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=serve_one, args=(_nodelay(sock),), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


# ---- raw --------------------------------------------------------------------------------------

def raw_server(port: int) -> None:
    def serve_one(sock: socket.socket) -> None:
        splitter = Splitter()
        while True:
            data = sock.recv(65536)
            if not data:
                return
            out = [frame(REP, id, {"v": body["args"][0]}) for _kind, id, body in splitter.feed(data)]
            if out:
                sock.sendall(b"".join(out))

    _accepting(port, serve_one)


class RawClient:
    def __init__(self, port: int) -> None:
        self.sock = _nodelay(socket.create_connection(("127.0.0.1", port)))
        self.splitter = Splitter()
        self.next_id = 0

    def request(self) -> bytes:
        self.next_id += 1
        return frame(REQ, self.next_id, {"fn": "echo", "args": ["hello"], "timeoutMs": 30000})

    def call(self) -> object:
        self.sock.sendall(self.request())
        while True:
            got = self.splitter.feed(self.sock.recv(65536))
            if got:
                return got[0][2]["v"]

    def in_flight(self, count: int, window: int) -> None:
        sent = min(window, count)
        self.sock.sendall(b"".join(self.request() for _ in range(sent)))
        done = 0
        while done < count:
            got = self.splitter.feed(self.sock.recv(65536))
            for _kind, _id, body in got:
                assert body["v"] == "hello"
            done += len(got)
            more = min(len(got), count - sent)
            if more > 0:
                self.sock.sendall(b"".join(self.request() for _ in range(more)))
                sent += more


def raw_listen(port: int) -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    return listener


def raw_read_publications(listener: socket.socket, on_message: Callable[[object], bool]) -> None:
    """Accepts one publisher and decodes what it sends until ``on_message`` returns False."""
    sock, _ = listener.accept()
    splitter = Splitter()
    while True:
        data = sock.recv(65536)
        if not data:
            return
        for _kind, _id, body in splitter.feed(data):
            if not on_message(body["args"][0]):
                return


def raw_publish(port: int, messages: int, on_start: Callable[[], None]) -> None:
    sock = _nodelay(socket.create_connection(("127.0.0.1", port)))
    on_start()
    batch = []
    for s in range(messages):
        batch.append(frame(PUB, 0, {"topic": "bench.msg", "args": [{"s": s, "b": "hello"}]}))
        if len(batch) == 1000:
            sock.sendall(b"".join(batch))
            batch.clear()
    if batch:
        sock.sendall(b"".join(batch))
    sock.close()


# ---- xmlrpc -----------------------------------------------------------------------------------

def xmlrpc_server(port: int) -> None:
    import socketserver
    from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

    class Handler(SimpleXMLRPCRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: ServerProxy keeps its connection (faster than the default 1.0)

    class Server(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
        daemon_threads = True
        request_queue_size = 128  # the default 5 drops the SYNs of 100 callers connecting at once

    server = Server(("127.0.0.1", port), requestHandler=Handler, logRequests=False, allow_none=True)
    server.register_function(lambda x: x, "echo")
    threading.Thread(target=server.serve_forever, daemon=True).start()


def xmlrpc_client(port: int):
    from xmlrpc.client import ServerProxy

    return ServerProxy(f"http://127.0.0.1:{port}/", allow_none=True)


# ---- multiprocessing.connection ---------------------------------------------------------------

def mp_server(port: int) -> None:
    from multiprocessing.connection import Listener

    listener = Listener(("127.0.0.1", port), authkey=None)

    def serve_one(conn) -> None:
        try:
            while True:
                conn.send(conn.recv())
        except (EOFError, OSError):
            pass

    def accept() -> None:
        while True:
            conn = listener.accept()
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def mp_client(port: int):
    from multiprocessing.connection import Client

    return Client(("127.0.0.1", port))


def mp_in_flight(conn, count: int, window: int) -> None:
    sent = min(window, count)
    for _ in range(sent):
        conn.send("hello")
    for _ in range(count):
        assert conn.recv() == "hello"
        if sent < count:
            conn.send("hello")
            sent += 1


