"""labc's wire framing (docs/protocol.md, "Frame layout"); the reference is lib/wire/codec.ts.

A frame is a u32 length, then kind (u8), flags (u8), number of binary parts B (u16), id (u32),
JSON length J (u32), the JSON body, B u32 part lengths and the parts. The body is written
exactly as JavaScript's ``JSON.stringify`` writes it, so that a frame decoded and encoded again
is the same bytes on both sides; values beyond JSON travel as values.py describes.
"""

from __future__ import annotations

import json
import json.decoder
import json.encoder
import json.scanner
import re
import struct
from typing import Any, List, Tuple

from . import values
from .errors import BadArgumentsError, FrameTooLargeError, MalformedFrameError
from .js_number import js_number


class Kind:
    """Message kinds, as numbered on the wire."""

    HELLO = 1
    REQ = 2
    REP = 3
    EXC = 4
    PUB = 5
    REQPUB = 6
    ANNOUNCE = 7
    WITHDRAW = 8
    POOL = 9
    DEATH = 10
    PING = 11
    PONG = 12
    CANCEL = 13
    SUSPECT = 14
    ITEM = 15
    CREDIT = 16


MAX_FRAME = 64 * 1024 * 1024
HEADER = 12  # bytes after the length prefix that every frame has
_HEAD = struct.Struct(">IBBHII")
_AFTER_LENGTH = struct.Struct(">BBHII")
_U32 = struct.Struct(">I")
_PUB = Kind.PUB

Frame = Tuple[int, int, int, dict]

# ---- JSON text as JSON.stringify writes it ---------------------------------------------------


def _refuse_value(v: Any) -> Any:
    raise TypeError(f"{type(v).__name__} is not JSON")


try:  # the C encoder, made once: json.dumps makes one per call, which small frames notice
    _dump_parts = json.encoder.c_make_encoder(  # type: ignore[attr-defined,misc]
        None, _refuse_value, json.encoder.encode_basestring, None, ":", ",", False, False, False)

    def _dumps(value: Any) -> str:
        return "".join(_dump_parts(value, 0))
except (AttributeError, TypeError):  # no C accelerator, or another signature
    _dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False).encode


def _write(v: Any, out: List[str]) -> None:
    """JSON text of a wire form holding floats Python would write otherwise (see js_number)."""
    t = type(v)
    if t is float:
        out.append(js_number(v))
    elif t is dict:
        out.append("{")
        first = True
        for k, x in v.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.encoder.encode_basestring(k))
            out.append(":")
            _write(x, out)
        out.append("}")
    elif t is list:
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _write(x, out)
        out.append("]")
    else:
        out.append(_dumps(v))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Surrogates a Python str holds: a pair is one character to JS (written as UTF-8), a
        # lone one JSON.stringify escapes (\ud800). Only strings hold them, so the escape is
        # inside quotes.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        return _SURROGATE.sub(lambda m: "\\u%04x" % ord(m.group()), text).encode("utf-8")


def encode(kind: int, id: int, body: dict, flags: int = 0, max_frame: int = MAX_FRAME) -> bytes:
    """The whole frame (length prefix included) of one message.

    ``body`` holds Python values (values.py says how each travels). Raises BadArgumentsError
    naming the path of a value that cannot be sent, or when the frame would exceed ``max_frame``.
    """
    if type(body) is dict and values.is_plain(body):
        try:
            data = _dumps(body).encode("utf-8")
        except UnicodeEncodeError:
            data = _utf8(_dumps(body))
        total = HEADER + len(data)
        if total > max_frame:
            raise BadArgumentsError(f"message of {total} bytes exceeds the maximum frame size of {max_frame} bytes")
        return _HEAD.pack(total, kind, flags & 0xFF, 0, id & 0xFFFFFFFF, len(data)) + data
    if not isinstance(body, dict):
        raise BadArgumentsError(f"a message body must be a dict, not {type(body).__name__}")
    wire = values.to_wire(body)
    value = wire.value
    if wire.paths:
        value[values.BIN_KEY] = wire.paths
    if wire.types:
        value[values.TYPES_KEY] = wire.types
    if wire.js_floats:
        out: List[str] = []
        _write(value, out)
        text = "".join(out)
    else:
        text = _dumps(value)
    blobs = wire.blobs
    data = _utf8(text)
    total = HEADER + len(data) + 4 * len(blobs) + sum(len(b) for b in blobs)
    if total > max_frame:
        raise BadArgumentsError(f"message of {total} bytes exceeds the maximum frame size of {max_frame} bytes")
    head = _HEAD.pack(total, kind, flags & 0xFF, len(blobs), id & 0xFFFFFFFF, len(data))
    if not blobs:
        return head + data
    return b"".join((head, data, b"".join(_U32.pack(len(b)) for b in blobs), *blobs))


def encode_publication(topic: str, args: List[Any], max_frame: int = MAX_FRAME) -> bytes:
    """``encode(Kind.PUB, 0, {"topic": topic, "args": args})``, the same bytes, without making the
    body and walking it again: a publisher's every message."""
    if type(topic) is str and type(args) is list and values.is_plain(args):
        text = '{"topic":' + _dumps(topic) + ',"args":' + _dumps(args) + "}"
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            data = _utf8(text)
        total = HEADER + len(data)
        if total <= max_frame:
            return _HEAD.pack(total, Kind.PUB, 0, 0, 0, len(data)) + data
    return encode(Kind.PUB, 0, {"topic": topic, "args": list(args)}, 0, max_frame)


class PublicationHead:
    """The JSON of a publication before its arguments, made once per topic: ``{"topic":T,"args":``
    (a publisher's every message then costs the arguments' JSON and one join)."""

    __slots__ = ("head",)

    def __init__(self, topic: str) -> None:
        self.head = _utf8('{"topic":' + _dumps(topic) + ',"args":')

    def frame(self, args: Any, max_frame: int) -> Any:
        """``encode_publication(topic, args)``, the same bytes; None when ``args`` are not plain
        JSON (values.is_plain), hold surrogates, or make too large a frame (``encode`` words it)."""
        if not values.is_plain(args):
            return None
        try:
            data = _dumps(args).encode("utf-8")
        except UnicodeEncodeError:
            return None
        size = len(self.head) + len(data) + 1
        if HEADER + size > max_frame:
            return None
        return b"".join((_HEAD.pack(HEADER + size, _PUB, 0, 0, 0, size), self.head, data, b"}"))


class RequestHead:
    """The JSON of a call's request around its arguments, made once per function and timeout:
    ``{"fn":NAME,"args":`` and ``,"timeoutMs":N}`` (the TypeScript side's REQUEST_HEADS)."""

    __slots__ = ("head", "tail")

    def __init__(self, fn: str, timeout_ms: int) -> None:
        self.head = _utf8('{"fn":' + _dumps(fn) + ',"args":')
        self.tail = b',"timeoutMs":%d}' % timeout_ms

    def args_json(self, args: Any) -> Any:
        """The arguments' JSON, when the standard encoder writes them as JSON.stringify would
        (values.is_plain) and they hold no surrogates; None otherwise (``encode`` words them)."""
        if not values.is_plain(args):
            return None
        try:
            return _dumps(args).encode("utf-8")
        except UnicodeEncodeError:
            return None

    def frame(self, id: int, args_json: bytes) -> bytes:
        """``encode(Kind.REQ, id, {"fn": ..., "args": ..., "timeoutMs": ...})``, the same bytes."""
        size = len(self.head) + len(args_json) + len(self.tail)
        return _HEAD.pack(HEADER + size, Kind.REQ, 0, 0, id, size) + self.head + args_json + self.tail


# ---- decoding --------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python reads NaN, Infinity; JSON.parse does not


def _js_int(text: str) -> Any:
    # JSON.parse reads every number as a double: past 2**53 an integer is one (a float here,
    # so that it is sent back as the number it was, not as a BigInt), and -0 is -0.
    if len(text) > 17:
        return float(text)  # also spares int() its limit of 4300 digits
    v = int(text)
    if -values.MAX_SAFE <= v <= values.MAX_SAFE:
        return -0.0 if text == "-0" else v
    return float(text)


_decoder = json.JSONDecoder(parse_constant=_no_constant)
_js_decoder = json.JSONDecoder(parse_constant=_no_constant, parse_int=_js_int)


_scan = json.scanner.make_scanner(_decoder)
_js_scan = json.scanner.make_scanner(_js_decoder)
_LONG_DIGITS = re.compile(rb"[0-9]{16}")
_SPACE = " \t\n\r"


def _parse(raw: Any) -> dict:
    # A number needing _js_int is rare and cheap to look for; _js_int costs a call per integer.
    scan = _js_scan if b"-0" in raw or _LONG_DIGITS.search(raw) else _scan
    text = raw.decode("utf-8", "replace")  # as Node's Buffer#toString reads bad UTF-8
    try:
        if text[:1] == "{" and text[-1:] == "}":  # as every encoder writes it: no space around
            body, end = scan(text, 0)
        else:
            body, end = scan(text, len(text) - len(text.lstrip(_SPACE)))
        if end != len(text) and text[end:].strip(_SPACE):
            raise ValueError("text after the body")
    except StopIteration:
        raise MalformedFrameError("body is not JSON") from None
    except (ValueError, RecursionError) as problem:
        raise MalformedFrameError(f"body is not JSON: {problem}") from None
    if type(body) is not dict:
        raise MalformedFrameError("body is not an object")
    return body


def _decode(buf: Any, start: int, end: int, undefined: Any) -> Frame:
    """The message of the frame at ``buf[start:end]`` (after its length prefix)."""
    kind, flags, blobs, id, jlen = _AFTER_LENGTH.unpack_from(buf, start)
    if not 1 <= kind <= 16:
        raise MalformedFrameError(f"unknown message kind {kind}")
    json_end = start + HEADER + jlen
    table_end = json_end + 4 * blobs
    if table_end > end:
        raise MalformedFrameError("JSON length runs past the frame")
    body = _parse(buf[start + HEADER:json_end])
    if blobs:
        parts = []
        at = table_end
        for i in range(blobs):
            (size,) = _U32.unpack_from(buf, json_end + 4 * i)
            if at + size > end:
                raise MalformedFrameError("binary part runs past the frame")
            parts.append(bytes(buf[at:at + size]))
            at += size
        if at != end:
            raise MalformedFrameError("bytes left after the binary parts")
        values.place_binary(body, body.pop(values.BIN_KEY, None), parts)
    elif table_end != end:
        raise MalformedFrameError("bytes left after the body")
    if values.TYPES_KEY in body:
        values.restore_types(body, body.pop(values.TYPES_KEY), undefined)
    return kind, flags, id, body


def decode_frame(frame: bytes, undefined: Any = None) -> Frame:
    """(kind, flags, id, body) of one whole frame, length prefix included.

    ``undefined`` is what a JS ``undefined`` in an array becomes (``values.UNDEFINED`` keeps it
    as such, so that the body encodes back to the same bytes). Raises MalformedFrameError.
    """
    if len(frame) < 4 + HEADER:
        raise MalformedFrameError("frame shorter than its header")
    (length,) = _U32.unpack_from(frame, 0)
    if length != len(frame) - 4:
        raise MalformedFrameError(f"declared length {length} is not the {len(frame) - 4} bytes that follow")
    return _decode(frame, 4, len(frame), undefined)


class FrameReader:
    """Splits a byte stream into messages, whatever the chunks' boundaries.

    Frames lying whole in a chunk are decoded from it where they lie; only the bytes of an
    incomplete frame are kept (``pending``), so feeding is linear in what is fed. An error is
    terminal: the stream is no longer aligned on frames, the connection must close.
    """

    def __init__(self, max_frame: int = MAX_FRAME, undefined: Any = None) -> None:
        self.max_frame = max_frame
        self._undefined = undefined
        self._buf = bytearray()
        self._failed: Exception | None = None

    @property
    def pending(self) -> int:
        """Bytes held of a frame not yet complete."""
        return len(self._buf)

    def feed(self, data: bytes) -> List[Frame]:
        """(kind, flags, id, body) of each frame completed by ``data``. Raises FrameTooLargeError
        as soon as a declared length passes the limit, MalformedFrameError for a bad frame."""
        if self._failed is not None:
            raise self._failed
        try:
            return self._feed(data)
        except Exception as error:
            self._failed = error
            self._buf = bytearray()
            raise

    def _feed(self, data: bytes) -> List[Frame]:
        if type(data) is not bytes:
            data = bytes(data)  # a memoryview of a read buffer: searched and decoded as bytes
        buf = self._buf
        if not buf and len(data) >= 4 + HEADER:
            # The common read: one whole frame (an answer, a lone publication).
            (length,) = _U32.unpack_from(data, 0)
            if length + 4 == len(data) and HEADER <= length <= self.max_frame:
                return [_decode(data, 4, length + 4, self._undefined)]
        if buf:
            buf += data
            src: Any = buf
        else:
            src = data
        n = len(src)
        pos = 0
        out = []
        max_frame, undefined, decode, unpack = self.max_frame, self._undefined, _decode, _U32.unpack_from
        while n - pos >= 4:
            (length,) = unpack(src, pos)
            if length > max_frame:
                raise FrameTooLargeError(f"a frame of {length} bytes exceeds the maximum frame size of {max_frame} bytes")
            if length < HEADER:
                raise MalformedFrameError(f"declared length {length} is shorter than a message header")
            end = pos + 4 + length
            if end > n:
                break
            out.append(decode(src, pos + 4, end, undefined))
            pos = end
        if src is buf:
            del buf[:pos]  # once per feed: bytearray drops a prefix without moving the rest each time
        elif pos < n:
            self._buf = bytearray(memoryview(src)[pos:])
        return out
