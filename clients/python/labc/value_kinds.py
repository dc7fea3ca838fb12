"""The Python kinds that stand for JavaScript values JSON has no word for (``BigInt``, ``Map``,
``UNDEFINED``), and the names both directions of values.py share: the keys a body lists its
binary parts and typed values under, the limits of the walk, the typed arrays' typecodes.
"""

from __future__ import annotations

import array
import datetime as _dt
import sys

BIN_KEY = "$bin"
TYPES_KEY = "$types"
MAX_DEPTH = 512
MAX_BLOBS = 65535
MAX_SAFE = 2**53 - 1
EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
LITTLE = sys.byteorder == "little"


class BigInt(int):
    """An int that travels as a BigInt whatever its size (a BigInt received stays one when sent on)."""

    __slots__ = ()


class Map(dict):
    """A dict that travels as a Map even with only str keys (a Map received stays one when sent on)."""


class _Undefined:
    """JS ``undefined``: left out of an object, ``[undefined]`` in an array."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()

# Python typecode -> (wire kind when 4 bytes wide, when 8 bytes wide).
ARRAY_KINDS = {
    "b": "Int8Array", "B": "Uint8Array", "h": "Int16Array", "H": "Uint16Array",
    "i": "Int32Array", "I": "Uint32Array", "l": "Int32Array", "L": "Uint32Array",
    "q": "BigInt64Array", "Q": "BigUint64Array", "f": "Float32Array", "d": "Float64Array",
}
WIDE_KINDS = {"i": "BigInt64Array", "l": "BigInt64Array", "I": "BigUint64Array", "L": "BigUint64Array"}
TYPECODES = {"Int8Array": "b", "Int16Array": "h", "Uint16Array": "H", "Int32Array": "i" if array.array("i").itemsize == 4 else "l",
              "Uint32Array": "I" if array.array("I").itemsize == 4 else "L", "BigInt64Array": "q", "BigUint64Array": "Q",
              "Float32Array": "f", "Float64Array": "d"}
