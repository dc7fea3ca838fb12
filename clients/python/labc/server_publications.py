"""How a server delivers the publications it gets: in the order they came, on one thread, a
connection whose publications pile up read no further until they are done; each subscriber
of the topic run (one of each group asked for), one that raises not stopping the others; and a
reqpub answered by the first subscriber. Part of Server (server.py), which sets the state used
here (``handlers``, ``_publications``, ``_plain_subscribers``, ``_group_turns``, ``_lock``...)
and Connection (``pub_marks``)."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional

from .connection import Connection
from .errors import BadArgumentsError, NoSuchFunctionError
from .publications import REQPUB
from .server_calls import id_of
from .topics import pattern_matches
from .trips import peer_text

#: Publications waiting on one connection past which it is read no further, and below which again
#: (also past limits.unsent bytes of them, and below a quarter of that).
PAUSE_AT, RESUME_AT = 2000, 200
#: Topics whose subscribers a server keeps matched (past this many, it forgets them all).
PLAIN_TOPICS = 1024


class Handler:
    __slots__ = ("pattern", "fn", "group", "label", "with_topic")

    def __init__(self, pattern: str, fn: Callable, group: Optional[str], label: str) -> None:
        self.pattern, self.fn, self.group, self.label = pattern, fn, group, label
        # A subscriber whose first parameter is named `topic` gets the topic first.
        try:
            first = next(iter(inspect.signature(fn).parameters), None)
        except (TypeError, ValueError):
            first = None
        self.with_topic = first == "topic"


class ServerPublications:
    """The publications half of Server (a mixin: it has no state of its own)."""

    def _publication(self, connection: Connection, body: Dict[str, Any]) -> None:
        if len(body) == 2:  # a topic and arguments only (body_problem checked both)
            return self._plain_publication(connection, body["topic"], body["args"])
        topic, args, groups = body["topic"], list(body["args"]), list(body.get("groups") or [])
        self._queue(connection, topic, args, groups, body.get("groupsOnly") is True, None)

    def _plain_publication(self, connection: Connection, topic: str, args: list) -> None:
        """A publication without groups, as most are: to the topic's subscribers as last matched."""
        plain = self._plain_subscribers
        subscribers = plain.get(topic)
        if subscribers is None:
            subscribers = self._match_plain(plain, topic)
        self._queue(connection, topic, args, (), False, subscribers)

    def _queue(self, connection: Connection, topic: str, args: list, groups: Any, only: bool, subscribers: Optional[tuple]) -> None:
        # Only the connection's reading thread appends to its marks, only the publications'
        # thread takes them off (one per publication it ran): both without a lock.
        marks = connection.pub_marks
        marks.append(connection.bytes_in)
        if (len(marks) >= PAUSE_AT or marks[-1] - marks[0] > self._pause_bytes) and not connection.paused:
            connection.pause()
        self._publications.submit(self._deliver_then, connection, topic, args, groups, only, subscribers)

    def _match_plain(self, plain: Dict[str, tuple], topic: str) -> tuple:
        """The subscribers outside groups of ``topic``, kept in ``plain`` (the server drops it
        when a subscriber is added); a peer's many topics cost a fresh match, not memory."""
        subscribers = tuple(h for h in self.handlers if h.group is None and pattern_matches(h.pattern, topic))
        if len(plain) >= PLAIN_TOPICS:
            plain.clear()
        plain[topic] = subscribers
        return subscribers

    def _deliver_then(self, connection: Connection, topic: str, args: list, groups: Any, only: bool, subscribers: Optional[tuple]) -> None:
        try:
            if subscribers is None:
                self.deliver(topic, args, groups, only)
            else:
                run = self._run_handler
                for handler in subscribers:
                    run(handler, topic, args)
        finally:
            connection.pub_marks.popleft()
            if connection.paused:
                self._may_resume(connection)

    def deliver(self, topic: str, args: list, groups: List[str] = (), only: bool = False) -> int:
        """Runs this server's subscribers of ``topic`` (outside groups unless ``only``), and one
        subscriber of each group in ``groups``; one that raises does not stop the others."""
        ran = 0
        if not only:
            for handler in self.handlers:
                if handler.group is None and pattern_matches(handler.pattern, topic):
                    self._run_handler(handler, topic, args)
                    ran += 1
        for group in groups:
            mine = [h for h in self.handlers if h.group == group and pattern_matches(h.pattern, topic)]
            if mine:
                turn = self._group_turns.get(group, 0)
                self._group_turns[group] = turn + 1
                self._run_handler(mine[turn % len(mine)], topic, args)
                ran += 1
        return ran

    def _run_handler(self, handler: Handler, topic: str, args: list) -> None:
        try:
            value = handler.fn(topic, *args) if handler.with_topic else handler.fn(*args)
            if value is not None and inspect.iscoroutine(value):
                self.rt.run_coroutine(value)
        except Exception as error:
            # The topic and the error's words may be a peer's: escaped, one line.
            self.rt.warn(peer_text(f'subscriber {handler.label} failed on "{topic}": {type(error).__name__}: {error}', 2000))

    def _answer_publication(self, args: list) -> Any:
        if not args or not isinstance(args[0], str):
            raise BadArgumentsError(f"{REQPUB}: the first argument is the topic")
        topic, rest = args[0], args[1:]
        matched = [h for h in self.handlers if h.group is None and pattern_matches(h.pattern, topic)]
        if not matched:
            raise NoSuchFunctionError(f'no function "{REQPUB} {topic}" in server scope (no subscriber of "{topic}" on server {self.id})')
        for handler in matched[1:]:
            self._run_handler(handler, topic, rest)
        first = matched[0]
        value = first.fn(topic, *rest) if first.with_topic else first.fn(*rest)
        return self.rt.run_coroutine(value) if inspect.iscoroutine(value) else value

    def subscribes(self, topic: str) -> bool:
        return any(h.group is None and pattern_matches(h.pattern, topic) for h in self.handlers)
