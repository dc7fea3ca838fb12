"""The protocol's test vectors (test/vectors/frames.json), which the TypeScript codec's tests
read too: each good frame decodes to what it says and encodes back to the very same bytes;
each malformed one is refused."""

import json
import os
import struct
import unittest

from labc import frames, values
from labc.errors import FrameTooLargeError, MalformedFrameError

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "..", "..", "test", "vectors", "frames.json"), encoding="utf-8") as f:
    VECTORS = json.load(f)["vectors"]
GOOD = [v for v in VECTORS if "malformed" not in v]
BAD = [v for v in VECTORS if "malformed" in v]


class GoodVectors(unittest.TestCase):
    def test_there_are_some(self):
        self.assertGreater(len(GOOD), 15)
        self.assertGreater(len(BAD), 2)

    def test_header_body_and_parts_as_written(self):
        for v in GOOD:
            with self.subTest(v["name"]):
                b = bytes.fromhex(v["frame"])
                length, kind, flags, blobs, id, jlen = struct.unpack_from(">IBBHII", b)
                self.assertEqual((length, kind, flags, blobs, id), (len(b) - 4, v["kind"], 0, len(v["parts"]), v["id"]))
                self.assertEqual(b[16:16 + jlen].decode(), v["json"])
                at = 16 + jlen + 4 * blobs
                for i, part in enumerate(v["parts"]):
                    (size,) = struct.unpack_from(">I", b, 16 + jlen + 4 * i)
                    self.assertEqual(b[at:at + size].hex(), part)
                    at += size
                self.assertEqual(at, len(b))

    def test_decoded_and_encoded_back_byte_for_byte(self):
        for v in GOOD:
            with self.subTest(v["name"]):
                b = bytes.fromhex(v["frame"])
                kind, flags, id, body = frames.decode_frame(b, undefined=values.UNDEFINED)
                self.assertEqual((kind, flags, id), (v["kind"], 0, v["id"]))
                self.assertNotIn("$bin", body)
                self.assertNotIn("$types", body)
                self.assertEqual(frames.encode(kind, id, body).hex(), v["frame"])

    def test_read_by_a_frame_reader_in_one_chunk_and_byte_by_byte(self):
        stream = b"".join(bytes.fromhex(v["frame"]) for v in GOOD)
        whole = frames.FrameReader().feed(stream)
        self.assertEqual([(k, i) for k, _f, i, _b in whole], [(v["kind"], v["id"]) for v in GOOD])
        reader = frames.FrameReader()
        split = []
        for i in range(len(stream)):
            split += reader.feed(stream[i:i + 1])
        self.assertEqual(reader.pending, 0)
        self.assertEqual(len(split), len(GOOD))
        self.assertEqual(repr(split), repr(whole))

    def test_what_some_decode_to(self):
        by_name = {v["name"]: frames.decode_frame(bytes.fromhex(v["frame"]))[3] for v in GOOD}
        self.assertEqual(by_name['echo("hi"), id 1'], {"fn": "echo", "args": ["hi"]})
        self.assertEqual(by_name["size(<de ad>), id 2"], {"fn": "size", "args": [b"\xde\xad"]})
        log = next(b for n, b in by_name.items() if n.startswith("log("))
        self.assertEqual(log["args"][0].timestamp(), 0)
        self.assertEqual(log["args"][1:], [10, [None], {"k": {1}}])
        scale = next(b for n, b in by_name.items() if n.startswith("scale("))
        self.assertEqual(scale["args"][0].typecode, "f")
        self.assertEqual(list(scale["args"][0]), [1.5, -2.0])
        quota = next(b for n, b in by_name.items() if "QuotaError" in n)
        self.assertEqual(quota["cause"].remote_name, "RangeError")
        self.assertEqual(str(quota["cause"]), "disk full")


class MalformedVectors(unittest.TestCase):
    def test_each_is_refused(self):
        for v in BAD:
            with self.subTest(v["name"]):
                b = bytes.fromhex(v["frame"])
                with self.assertRaises(MalformedFrameError):
                    frames.decode_frame(b)
                # A reader, which cannot know where a frame whose length does not add up ends,
                # refuses it or waits for more; never hands out a message.
                reader = frames.FrameReader()
                try:
                    self.assertEqual(reader.feed(b), [])
                except (MalformedFrameError, FrameTooLargeError):
                    pass


if __name__ == "__main__":
    unittest.main()
