"""Values beyond JSON (docs/protocol.md#values-beyond-json), both ways: what a Python value travels
as (values_out.py, ``to_wire``), what a received one becomes (values_in.py, ``restore_types``),
and the kinds they share (value_kinds.py). This module gathers their public names, so that
``labc.values.Map``, ``labc.values.BigInt`` and ``labc.values.UNDEFINED`` stay where users find them.

Sent on again, a received value is the same bytes as the sender wrote (test/vectors/frames.json
pins it), except where Python has no exact counterpart: a Uint8Array, Uint8ClampedArray,
DataView or ArrayBuffer goes back as a Buffer; a Set goes in Python's iteration order, not in
the order it came; a Map key or Set item made hashable goes as an array; an invalid Date as
null; a RegExp without its flags g, y, u, d, v, or as a string when ``re`` could not compile it;
an Error whose name is a Python builtin's keeps that name (TypeError), any other keeps its
name through RemoteError. ``UNDEFINED`` (``decode_frame(..., undefined=UNDEFINED)``) keeps
``[undefined]`` apart from ``[null]``; by default both are None.
"""

from .value_kinds import BIN_KEY, MAX_BLOBS, MAX_DEPTH, MAX_SAFE, TYPES_KEY, UNDEFINED, BigInt, Map
from .values_in import hashable, place_binary, restore_types
from .values_out import Wire, date_ms, error_fields, is_plain, to_wire

__all__ = [
    "BIN_KEY", "MAX_BLOBS", "MAX_DEPTH", "MAX_SAFE", "TYPES_KEY", "UNDEFINED", "BigInt", "Map",
    "Wire", "date_ms", "error_fields", "hashable", "is_plain", "place_binary", "restore_types", "to_wire",
]
