"""Where a message for a server goes (``handle``): a caller's hello, requests, publications,
cancels and credit, each checked first (body_checks.py); and what does not fit refused as the
TypeScript side refuses it (docs/protocol.md#refusals). Part of Server (server.py): the calls
it hands on are server_calls.py's, the publications server_publications.py's."""

from __future__ import annotations

from typing import Any, Dict

from .body_checks import MAX_NAME, body_problem
from .connection import Connection
from .errors import LabcError
from .frames import Kind
from .server_calls import id_of
from .stream_pump import StreamPump
from .trips import tripped

PROTOCOL_VERSION = 1
_PUB = Kind.PUB
KIND_NAMES = {value: name.lower() for name, value in vars(Kind).items() if not name.startswith("_")}
#: Kinds whose sender waits for an answer when the header id is not 0.
ANSWERED = frozenset((Kind.HELLO, Kind.REQ, Kind.ANNOUNCE, Kind.WITHDRAW, Kind.PING, Kind.DEATH))


def js_text(value: Any) -> str:
    """A value as JavaScript's template string writes it (``${v}``), for messages that quote one."""
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


class ServerDispatch:
    """The dispatching part of Server (a mixin: it has no state of its own)."""

    def handle(self, connection: Connection, kind: int, flags: int, id: int, body: Dict[str, Any], routed: bool = False) -> None:
        """A message for this server, from a caller's connection or (``routed``) the lifeline."""
        if kind == _PUB and connection.peer and len(body) == 2:
            # A topic and arguments only, from a peer that said hello: most messages of a flood.
            # body_problem's checks of those two, inline.
            topic, args = body.get("topic"), body.get("args")
            if type(topic) is str and 0 < len(topic) <= MAX_NAME and type(args) is list:
                return self._plain_publication(connection, topic, args)
        accepted = getattr(connection, "accepted", False)
        problem = body_problem(kind, body)
        if problem is not None:
            return self._refuse(connection, kind, id, problem)
        if accepted and not connection.peer and kind != Kind.HELLO:
            return self._refuse(connection, kind, id, "the first message on a connection must be a hello")
        if kind == Kind.REQ:
            return self._request(connection, flags, id, body, routed)
        if kind == Kind.PUB:
            return self._publication(connection, body)
        if kind == Kind.CANCEL:
            running = self._running.get(id_of(connection), {}).get(id) if id else None
            if running is not None:
                running.cancel()
            return
        if kind == Kind.CREDIT:
            running = self._running.get(id_of(connection), {}).get(id) if id else None
            if isinstance(running, StreamPump):
                running.grant(int(body["n"]))
            return
        if kind == Kind.HELLO and accepted:
            if body["v"] != PROTOCOL_VERSION:
                # As a router answers it (docs/protocol.md, Field details): the reason, then the close.
                self._answer_refusal(connection, id, {"name": "BadArgumentsError", "message": f"protocol version {js_text(body['v'])} is not {PROTOCOL_VERSION}", "code": "LABC_BAD_ARGUMENTS"})
                return self._close_refused(connection, id, "bad_message", f"protocol version {js_text(body['v'])} is not {PROTOCOL_VERSION}")
            connection.peer = body
            self._proved(connection, getattr(connection, "remote_host", ""))
            return
        if kind == Kind.DEATH and id:
            connection.send(Kind.REP, id, {"v": None})

    def _refuse(self, connection: Connection, kind: int, id: int, problem: str) -> None:
        """A message that does not fit (docs/protocol.md#refusals), answered as the TypeScript side
        answers it, byte for byte (test/vectors/frames.json, refusals): an ``exc`` when the peer
        waits for an answer and said hello, and the connection stays; a bad ``hello`` with an id is
        answered too, then closed; anything else closes the connection unanswered."""
        name = KIND_NAMES.get(kind, str(kind))
        message = f"bad {name} message: {problem}"
        answered = id != 0 and kind in ANSWERED
        if answered and (connection.peer or not getattr(connection, "accepted", False)):
            tripped("bad_message", connection.remote, message)
            self._answer_refusal(connection, id, {"name": "BadMessageError", "message": message, "code": "LABC_BAD_MESSAGE", "data": {"kind": name}})
            return
        if answered and kind == Kind.HELLO:
            self._answer_refusal(connection, id, {"name": "BadMessageError", "message": message, "code": "LABC_BAD_MESSAGE", "data": {"kind": name}})
        self._close_refused(connection, id if kind == Kind.HELLO else 0, "bad_message", message)

    def _answer_refusal(self, connection: Connection, id: int, body: Dict[str, Any]) -> None:
        try:
            connection.send(Kind.EXC, id, body)
        except LabcError:
            pass

    def _close_refused(self, connection: Connection, answered: int, limit: str, why: str) -> None:
        """Closes a connection whose peer broke the protocol; after what was answered has left
        (within 1 s) when ``answered``, so that its sender learns why."""
        tripped(limit, connection.remote, f"{why}; closed the connection ({connection.label})")
        if answered:
            connection.close_after_flush(1.0)
        else:
            connection.close(LabcError(why))
