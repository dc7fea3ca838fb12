"""Values beyond JSON both ways (labc/values.py), JSON written as JSON.stringify writes it, and
the frame reader's limits (labc/frames.py)."""

import array
import dataclasses
import datetime as dt
import math
import re
import struct
import unittest

from labc import frames, values
from labc.errors import BadArgumentsError, FrameTooLargeError, LabcError, MalformedFrameError, RemoteError


def round_trip(v):
    return frames.decode_frame(frames.encode(frames.Kind.REP, 1, {"v": v}))[3]["v"]


def body_text(body):
    frame = frames.encode(frames.Kind.REQ, 1, body)
    (jlen,) = struct.unpack_from(">I", frame, 12)
    return frame[16:16 + jlen].decode()


def frame_of(json_text, parts=(), kind=3):
    data = json_text.encode()
    table = b"".join(struct.pack(">I", len(p)) for p in parts)
    blob = b"".join(parts)
    return struct.pack(">IBBHII", 12 + len(data) + len(table) + len(blob), kind, 0, len(parts), 1, len(data)) + data + table + blob


class JsonAsJavaScriptWritesIt(unittest.TestCase):
    def test_numbers(self):
        cases = {1.0: "1", -2.0: "-2", 0.0: "0", 1e-7: "1e-7", 1e-5: "0.00001", 1e21: "1e+21", 1e20: "100000000000000000000",
                 1.2345678901234568e20: "123456789012345680000", 1e16: "10000000000000000", 0.1: "0.1", 21.5: "21.5",
                 5e-324: "5e-324", 1.5e-10: "1.5e-10", 1.7976931348623157e308: "1.7976931348623157e+308", -1.5e-7: "-1.5e-7"}
        for x, text in cases.items():
            with self.subTest(x):
                self.assertEqual(body_text({"v": x}), '{"v":%s}' % text)
                self.assertEqual(body_text({"v": [x, "a"]}), '{"v":[%s,"a"]}' % text)

    def test_strings(self):
        self.assertEqual(body_text({"s": "é\u2028\x7f"}), '{"s":"é\u2028\x7f"}')
        self.assertEqual(body_text({"s": "\b\f\n\r\t\x01\x1f\"\\/"}), '{"s":"\\b\\f\\n\\r\\t\\u0001\\u001f\\"\\\\/"}')
        self.assertEqual(body_text({"s": "\ud800x"}), '{"s":"\\ud800x"}')  # a lone surrogate, escaped
        self.assertEqual(body_text({"s": "\ud83d\ude00"}), '{"s":"😀"}')  # a pair is one character

    def test_key_order_and_compact(self):
        self.assertEqual(body_text({"b": 1, "a": [True, None, False], "c": {}}), '{"b":1,"a":[true,null,false],"c":{}}')

    def test_big_json_integers_read_as_javascript_reads_them(self):
        body = frames.decode_frame(frame_of('{"v":[123456789012345680000,9007199254740993,-0,5]}'))[3]
        self.assertEqual(body["v"][:2], [1.2345678901234568e20, 9007199254740992.0])
        self.assertEqual(math.copysign(1, body["v"][2]), -1)
        self.assertEqual(type(body["v"][3]), int)


class RoundTrips(unittest.TestCase):
    def test_each_kind(self):
        when = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.timezone.utc)
        cases = [
            (b"\x00\xff", b"\x00\xff"), (bytearray(b"ab"), b"ab"), (memoryview(b"cd"), b"cd"), (when, when),
            (2**60, 2**60), (-(2**70), -(2**70)), (values.BigInt(5), 5), ({"a": 1}, {"a": 1}),
            ({1: "one", (1, 2): "t"}, {1: "one", (1, 2): "t"}), (values.Map(a=1), {"a": 1}), ({1, 2, "x"}, {1, 2, "x"}),
            (frozenset({3}), {3}), ([1, [2, [3]]], [1, [2, [3]]]), ((1, 2), [1, 2]), (None, None), (True, True),
            (False, False), ("s", "s"), (1.5, 1.5), (7, 7), (2.0, 2),
        ]
        for v, expected in cases:
            with self.subTest(v):
                self.assertEqual(round_trip(v), expected)
        self.assertIs(type(round_trip(True)), bool)
        self.assertEqual(round_trip(when).tzinfo, dt.timezone.utc)
        self.assertIsInstance(round_trip({1: 2}), values.Map)
        self.assertIsInstance(round_trip(2**60), values.BigInt)

    def test_special_numbers(self):
        out = round_trip([math.nan, math.inf, -math.inf, -0.0])
        self.assertTrue(math.isnan(out[0]))
        self.assertEqual(out[1:3], [math.inf, -math.inf])
        self.assertEqual(math.copysign(1, out[3]), -1)

    def test_typed_arrays(self):
        for code in "bhHiIlLqQfd":
            a = array.array(code, [1, 2, 3])
            with self.subTest(code):
                self.assertEqual(round_trip(a), a if a.itemsize <= 4 or code in "qQd" else array.array(code.lower().replace("l", "q") if code == "l" else "Q", a))
        self.assertEqual(round_trip(array.array("B", [1, 2])), b"\x01\x02")  # Uint8Array arrives as bytes

    def test_binary_kinds_from_javascript(self):
        for kind in ("Uint8Array", "Uint8ClampedArray", "DataView", "ArrayBuffer"):
            body = frames.decode_frame(frame_of('{"v":null,"$bin":[["v"]],"$types":[["%s","v"]]}' % kind, [b"\x01\x02"]))[3]
            self.assertEqual(body["v"], b"\x01\x02")
        body = frames.decode_frame(frame_of('{"v":null,"$bin":[["v"]],"$types":[["Int16Array","v"]]}', [b"\x01\x00\xff\xff"]))[3]
        self.assertEqual(body["v"], array.array("h", [1, -1]))

    def test_dates(self):
        naive = dt.datetime(2024, 1, 2, 3, 4, 5)
        self.assertEqual(round_trip(naive).timestamp(), naive.timestamp())
        self.assertEqual(round_trip(dt.date(2024, 1, 2)), dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc))
        self.assertIsNone(frames.decode_frame(frame_of('{"v":null,"$types":[["Date","v"]]}'))[3]["v"])
        self.assertIsNone(frames.decode_frame(frame_of('{"v":8640000000000000,"$types":[["Date","v"]]}'))[3]["v"])

    def test_unhashable_set_items_and_map_keys(self):
        body = frames.decode_frame(frame_of('{"v":[[[1,2],[3]],[[[1],"x"]]],"$types":[["Set","v",0,1],["Set","v",0],["Map","v",1]]}'))[3]
        self.assertEqual(body["v"], [{(1, 2), frozenset({3})}, {(1,): "x"}])

    def test_regexp(self):
        p = round_trip(re.compile("a+b", re.I | re.S))
        self.assertEqual((p.pattern, p.flags & (re.I | re.M | re.S)), ("a+b", re.I | re.S))
        body = frames.decode_frame(frame_of('{"v":["(?<=a)\\\\k<x>(","g"],"$types":[["RegExp","v"]]}'))[3]
        self.assertEqual(body["v"], "(?<=a)\\k<x>(")  # Python cannot compile it: the source
        self.assertIsInstance(frames.decode_frame(frame_of('{"v":["a.c","gim"],"$types":[["RegExp","v"]]}'))[3]["v"], re.Pattern)
        # As JS's RegExp#source writes it: / outside a class and line ends escaped, (?:) when empty.
        self.assertEqual(body_text({"v": re.compile("a/[/]\n")}), '{"v":["a\\\\/[/]\\\\n",""],"$types":[["RegExp","v"]]}')
        self.assertEqual(body_text({"v": re.compile("")}), '{"v":["(?:)",""],"$types":[["RegExp","v"]]}')

    def test_errors(self):
        try:
            raise KeyError("k") from ValueError("inner")
        except KeyError as e:
            e.details = {"x": 1}
            out = round_trip(e)
        self.assertIs(type(out), KeyError)
        self.assertEqual(out.args, ("k",))
        self.assertEqual(out.details, {"x": 1})
        self.assertIs(type(out.__cause__), ValueError)
        range_error = frames.decode_frame(frame_of('{"v":{"name":"RangeError","message":"m","code":"E","n":1},"$types":[["Error","v"]]}'))[3]["v"]
        self.assertIsInstance(range_error, RemoteError)
        self.assertEqual((range_error.remote_name, range_error.remote_code, range_error.n, str(range_error)), ("RangeError", "E", 1, "m"))
        self.assertEqual(body_text({"v": range_error}), '{"v":{"name":"RangeError","message":"m","code":"E","n":1},"$types":[["Error","v"]]}')
        labc_error = LabcError("boom", data={"function": "f"})
        self.assertEqual(body_text({"v": labc_error}), '{"v":{"name":"LabcError","message":"boom","code":"LABC_ERROR","function":"f"},"$types":[["Error","v"]]}')

    def test_dataclass_as_plain_object(self):
        @dataclasses.dataclass
        class Point:
            x: int
            y: float

        self.assertEqual(body_text({"v": Point(1, 2.5)}), '{"v":{"x":1,"y":2.5}}')

    def test_undefined(self):
        self.assertEqual(body_text({"v": values.UNDEFINED}), "{}")
        self.assertEqual(body_text({"v": [values.UNDEFINED], "o": {"a": values.UNDEFINED}}), '{"v":[null],"o":{},"$types":[["undefined","v",0]]}')
        self.assertEqual(round_trip([values.UNDEFINED]), [None])

    def test_types_listed_innermost_first(self):
        text = body_text({"fn": "log", "args": [dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), values.BigInt(10), [values.UNDEFINED], {"k": {1}} if False else values.Map(k={1})]})
        self.assertEqual(text, '{"fn":"log","args":[0,"a",[null],[["k",[1]]]],"$types":[["Date","args",0],["BigInt","args",1],["undefined","args",2,0],["Set","args",3,0,1],["Map","args",3]]}')


class Refusals(unittest.TestCase):
    def refused(self, body, message):
        with self.assertRaises(BadArgumentsError) as caught:
            frames.encode(frames.Kind.REQ, 1, body)
        self.assertEqual(str(caught.exception), message)

    def test_paths_named(self):
        def then():
            pass

        self.refused({"fn": "echo", "args": [{"then": then}]}, "args[0].then: a function (then) cannot be sent")
        self.refused({"v": {"a b": [1, lambda: 0]}}, 'result["a b"][1]: a function (anonymous) cannot be sent')
        self.refused({"args": [{1: object()}]}, "args[0].get(1): an instance of object cannot be sent (send a dict, or make it a dataclass)")
        self.refused({"args": [{(1,): re}]}, "args[0]<value 0>: a module (re) cannot be sent")
        self.refused({"args": [{"k": {print}}]}, "args[0].k<item 0>: a function (print) cannot be sent")

    def test_depth_and_cycles(self):
        deep = ["x"]
        for _ in range(511):
            deep = [deep]
        frames.encode(frames.Kind.REQ, 1, {"args": deep})  # args at 1, the innermost list at 512
        with self.assertRaises(BadArgumentsError) as caught:
            frames.encode(frames.Kind.REQ, 1, {"args": [deep]})
        self.assertTrue(str(caught.exception).endswith("…: nested deeper than 512 levels (or cyclic)"))
        cyclic = {"a": []}
        cyclic["a"].append(cyclic)
        with self.assertRaises(BadArgumentsError) as caught:
            frames.encode(frames.Kind.REQ, 1, {"args": [cyclic]})
        self.assertTrue(str(caught.exception).startswith("args[0].a[0].a[0].a[0]"))

    def test_frame_too_large(self):
        with self.assertRaises(BadArgumentsError) as caught:
            frames.encode(frames.Kind.REQ, 1, {"args": [b"x" * 100]}, max_frame=100)
        self.assertRegex(str(caught.exception), r"^message of \d+ bytes exceeds the maximum frame size of 100 bytes$")


class Reader(unittest.TestCase):
    def test_huge_declared_length_refused_before_buffering(self):
        reader = frames.FrameReader()
        with self.assertRaises(FrameTooLargeError):
            reader.feed(struct.pack(">I", 3 * 1024**3))
        with self.assertRaises(FrameTooLargeError):
            reader.feed(b"")  # unusable afterwards

    def test_malformed(self):
        bad = {
            "short length": struct.pack(">I", 11) + b"\0" * 11,
            "unknown kind": frame_of("{}", kind=17),
            "not an object": frame_of("[1]"),
            "NaN is not JSON": frame_of('{"v":NaN}'),
            "$bin not matching B": frame_of('{"v":null}', [b"x"]),
            "$bin path missing": frame_of('{"v":null,"$bin":[["w","x"]]}', [b"x"]),
            "unknown $types kind": frame_of('{"v":1,"$types":[["Nope","v"]]}'),
            "$types path missing": frame_of('{"v":1,"$types":[["Date","w"]]}'),
            "$types form does not fit": frame_of('{"v":"x","$types":[["Date","v"]]}'),
            "bad BigInt": frame_of('{"v":"xyz","$types":[["BigInt","v"]]}'),
            "typed array of odd length": frame_of('{"v":null,"$bin":[["v"]],"$types":[["Int16Array","v"]]}', [b"x"]),
            "bytes left": frame_of("{}") + b"\0",
        }
        for name, frame in bad.items():
            with self.subTest(name):
                if name == "bytes left":
                    frame = struct.pack(">I", len(frame) - 4) + frame[4:]
                with self.assertRaises(MalformedFrameError):
                    frames.FrameReader().feed(frame)

    def test_bin_with_no_parts_is_an_ordinary_field(self):
        body = frames.decode_frame(frame_of('{"v":null,"$bin":[["v"]]}'))[3]
        self.assertEqual(body, {"v": None, "$bin": [["v"]]})

    def test_proto_key_is_a_key(self):
        body = frames.decode_frame(frame_of('{"v":{"__proto__":null},"$bin":[["v","__proto__"]]}', [b"p"]))[3]
        self.assertEqual(body, {"v": {"__proto__": b"p"}})

    def test_byte_by_byte_and_many_in_one_chunk(self):
        sent = [{"fn": "echo", "args": [i, b"\x00" * (i % 3), "é"]} for i in range(300)]
        stream = b"".join(frames.encode(frames.Kind.REQ, i, body) for i, body in enumerate(sent))
        reader = frames.FrameReader()
        got = []
        for i in range(len(stream)):
            got += reader.feed(stream[i:i + 1])
            if got and len(got) < len(sent):
                self.assertLess(reader.pending, 100)
        self.assertEqual([b for _k, _f, _i, b in got], [dict(b, args=[b["args"][0], bytes(b["args"][1]), "é"]) for b in sent])
        self.assertEqual([i for _k, _f, i, _b in frames.FrameReader().feed(stream)], list(range(300)))
        reader = frames.FrameReader()
        self.assertEqual(len(reader.feed(stream[:-5])), 299)
        self.assertEqual(reader.pending, len(stream[:-5]) - len(b"".join(frames.encode(2, i, b) for i, b in enumerate(sent[:299]))))
        self.assertEqual(len(reader.feed(stream[-5:])), 1)
        self.assertEqual(reader.pending, 0)

    def test_flags_and_id_kept(self):
        frame = frames.encode(frames.Kind.REQ, 0xFFFFFFFF, {"fn": "f", "args": []}, flags=3)
        self.assertEqual(frames.decode_frame(frame)[:3], (2, 3, 0xFFFFFFFF))


if __name__ == "__main__":
    unittest.main()
