# TEMPORARY minimal codec (replaced by helper's frames.py)
import json, struct
from .errors import BadArgumentsError, MalformedFrameError, FrameTooLargeError
class Kind:
    HELLO=1; REQ=2; REP=3; EXC=4; PUB=5; REQPUB=6; ANNOUNCE=7; WITHDRAW=8; POOL=9; DEATH=10; PING=11; PONG=12; CANCEL=13; SUSPECT=14; ITEM=15; CREDIT=16
MAX_FRAME = 64 * 1024 * 1024
def _out(value, path, paths, parts):
    if isinstance(value, (bytes, bytearray, memoryview)):
        paths.append(path); parts.append(bytes(value)); return None
    if isinstance(value, dict):
        return {k: _out(v, path + [k], paths, parts) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_out(v, path + [i], paths, parts) for i, v in enumerate(value)]
    return value
def encode(kind, id, body, flags=0, max_frame=MAX_FRAME):
    paths, parts = [], []
    body = _out(body, [], paths, parts)
    if parts: body["$bin"] = paths
    try:
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as e:
        raise BadArgumentsError(str(e))
    table = b"".join(struct.pack(">I", len(p)) for p in parts)
    length = 12 + len(data) + len(table) + sum(len(p) for p in parts)
    return struct.pack(">IBBHII", length, kind, flags, len(parts), id, len(data)) + data + table + b"".join(parts)
def decode_frame(frame):
    (length,) = struct.unpack_from(">I", frame)
    kind, flags, blobs, id, jlen = struct.unpack_from(">BBHII", frame, 4)
    body = json.loads(bytes(frame[16:16 + jlen]))
    if blobs:
        at = 16 + jlen + 4 * blobs
        for i, path in enumerate(body.pop("$bin")):
            (size,) = struct.unpack_from(">I", frame, 16 + jlen + 4 * i)
            t = body
            for key in path[:-1]: t = t[key]
            t[path[-1]] = bytes(frame[at:at + size]); at += size
    return kind, flags, id, body
class FrameReader:
    def __init__(self, max_frame=MAX_FRAME):
        self.buf = bytearray(); self.max_frame = max_frame
    @property
    def pending(self): return len(self.buf)
    def feed(self, data):
        self.buf += data; out = []; at = 0
        while len(self.buf) - at >= 4:
            (length,) = struct.unpack_from(">I", self.buf, at)
            if length > self.max_frame: raise FrameTooLargeError("too large")
            if length < 12: raise MalformedFrameError("short")
            if len(self.buf) - at < 4 + length: break
            out.append(decode_frame(bytes(self.buf[at:at + 4 + length]))); at += 4 + length
        del self.buf[:at]
        return out
