"""A limit a peer tripped, or a message of its refused: counted, and said in one line of stderr
once per limit, peer address and minute, within a budget for all peers together (lib/net/trips.ts,
docs/reliability.md#limits). A line never holds a peer's bytes as they are: what it quotes is
cut and its control characters written as escapes, so one line is one line.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from typing import Callable, Dict

#: How often one peer's trips are logged at most.
LOG_EVERY_S = 60.0
#: All peers together: this many lines at once, and this many more a minute.
LINES_AT_ONCE = 20
LINES_A_MINUTE = 20
#: What a line quotes of a peer at most.
DETAIL_MAX = 300

# C0 controls, DEL, C1 controls, the line and paragraph separators and the bidi controls.
_UNSAFE = re.compile("[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

counts: Counter = Counter()
_last: Dict[str, float] = {}
_lines = float(LINES_AT_ONCE)
_counted_at = time.monotonic()
_held = 0
_lock = threading.Lock()


def escape_controls(text: str) -> str:
    """``text`` with every unsafe character written as an escape (``\\n``, ``\\x1b``, ``\\u202e``)."""
    def escaped(m: "re.Match[str]") -> str:
        c = m.group()
        return _NAMED.get(c) or ("\\x%02x" % ord(c) if ord(c) < 0x100 else "\\u%04x" % ord(c))

    return _UNSAFE.sub(escaped, text)


def peer_text(text: object, limit: int = DETAIL_MAX) -> str:
    """Text a peer sent, fit for a log line: cut to about ``limit`` characters, escaped."""
    text = str(text)
    if len(text) > limit:
        tail = limit // 4
        text = f"{text[:limit - tail]}…[{len(text) - limit} characters cut]…{text[len(text) - tail:]}"
    return escape_controls(text)


def address_of(remote: str) -> str:
    """A peer's address without its port."""
    host = remote.rsplit(":", 1)[0] if remote.count(":") == 1 or remote.startswith("[") else remote
    return peer_text(host.strip("[]").replace("::ffff:", ""), 100)


def tripped(limit: str, remote: str, detail: str) -> None:
    """``limit`` tripped on the connection of the peer at ``remote`` (``address:port``)."""
    address = address_of(remote)
    _say(limit, f"{limit} {address}", lambda more: f"labc: {limit} tripped by {address}: {peer_text(detail)} "
         f"(further {limit} trips by {address} are counted, not logged, for a minute{more})")


def refused(remote: str, why: str) -> None:
    """The peer at ``remote`` was refused, not being a member (it lacks the secret): counted as
    ``refused``, and said once per peer and minute with why (lib/net/trips.ts's ``refused``)."""
    address = address_of(remote)
    _say("refused", f"refused {address}", lambda more: f"labc: refused {address}: {peer_text(why)} "
         f"(further refusals of {address} are counted, not logged, for a minute{more})")


def _say(count: str, key: str, line: Callable[[str], str]) -> None:
    """Counts ``count``; logs ``line`` when ``key`` was not said this minute and the log's budget
    has a line left (given what was held back before it)."""
    global _lines, _counted_at, _held
    with _lock:
        counts[count] += 1
        now = time.monotonic()
        last = _last.get(key)
        if last is not None and now - last < LOG_EVERY_S:
            return
        _lines = min(float(LINES_AT_ONCE), _lines + (now - _counted_at) * LINES_A_MINUTE / 60)
        _counted_at = now
        if _lines < 1:
            _held += 1
            return
        _lines -= 1
        if len(_last) > 10_000:
            _last.clear()
        _last[key] = now
        held, _held = _held, 0
    more = f"; {held} trip(s) of other peers before this one were counted, not logged" if held else ""
    try:
        print(line(more), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
