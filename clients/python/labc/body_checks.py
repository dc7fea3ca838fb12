"""What a server reads of a peer's message body, checked before anything else looks at it: the
body checks of lib/wire/validate.ts, with its words (``body_problem``)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from .frames import Kind

MAX_NAME = 1024
_PUB = Kind.PUB

def _str(v: Any, path: str) -> Optional[str]:
    if type(v) is not str:
        return f"{path} must be a string"
    return f"{path} is over {MAX_NAME} characters" if len(v) > MAX_NAME else None


def _name(v: Any, path: str) -> Optional[str]:
    return _str(v, path) or (f"{path} must not be empty" if v == "" else None)


def _number(v: Any) -> bool:
    return type(v) in (int, float) and v == v and v not in (float("inf"), float("-inf"))


def _whole(v: Any, path: str) -> Optional[str]:
    return None if _number(v) and float(v).is_integer() and v >= 0 else f"{path} must be a whole number"


def _count(v: Any, path: str) -> Optional[str]:
    return None if _number(v) and float(v).is_integer() and 1 <= v <= 2 ** 31 else f"{path} must be a whole number from 1 to 2^31"


def _port(v: Any, path: str) -> Optional[str]:
    return None if _number(v) and float(v).is_integer() and 0 <= v <= 65535 else f"{path} must be a port"


def _ms(v: Any, path: str) -> Optional[str]:
    return None if type(v) in (int, float) and v >= 0 else f"{path} must be a number of milliseconds"


def _bool(v: Any, path: str) -> Optional[str]:
    return None if type(v) is bool else f"{path} must be true or false"


def _array(v: Any, path: str) -> Optional[str]:
    return None if isinstance(v, (list, tuple)) else f"{path} must be an array"


def _role(v: Any, path: str) -> Optional[str]:
    return None if v in ("server", "client", "router") and type(v) is str else f"{path} must be one of server, client, router"


def _names(v: Any, path: str) -> Optional[str]:
    if not isinstance(v, (list, tuple)):
        return f"{path} must be an array"
    for i, item in enumerate(v):
        problem = _name(item, f"{path}[{i}]")
        if problem:
            return problem
    return None


#: Per kind: (field, check, optional); an optional field may be absent or null.
SHAPES = {
    Kind.HELLO: (("v", _whole, False), ("role", _role, False), ("id", _name, False), ("pid", _whole, False), ("host", _str, False),
                 ("hostId", _str, False), ("state", _str, True), ("realm", _str, True), ("port", _port, True), ("watch", _bool, True),
                 ("nats", _bool, True)),
    Kind.REQ: (("fn", _name, False), ("args", _array, False), ("target", _name, True), ("timeoutMs", _ms, True), ("credit", _count, True),
               ("trace", _str, True)),
    Kind.CREDIT: (("n", _count, False),),
    Kind.PUB: (("topic", _name, False), ("args", _array, False), ("target", _name, True), ("groups", _names, True), ("groupsOnly", _bool, True),
               ("gateway", _name, True), ("except", _name, True)),
}


def body_problem(kind: int, body: Dict[str, Any]) -> Optional[str]:
    """What is wrong with a body of this kind, in lib/wire/validate.ts's words, or None."""
    if kind == _PUB and len(body) == 2:
        # A publication with a topic and arguments only, as most are: SHAPES' checks of those two
        # (the others absent), without a look-up for each field a subscriber's every message.
        topic, args = body.get("topic"), body.get("args")
        if type(topic) is str and 0 < len(topic) <= MAX_NAME and type(args) is list:
            return None
    for field, check, optional in SHAPES.get(kind, ()):
        value = body.get(field)
        if value is None:
            if optional:
                continue
            return f"{field} is missing"
        problem = check(value, field)
        if problem:
            return problem
    return None
