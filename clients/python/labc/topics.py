"""Topics and subscription patterns (docs/protocol.md#topics): words split by ``.`` (or ``/``),
``*`` for one word, ``#`` (last only) for the rest; a queue group is written ``pattern #group``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import List, Optional, Tuple

from .errors import BadArgumentsError

GROUP_MARK = " #"
_GROUP = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def words(topic: str) -> List[str]:
    return topic.replace("/", ".").split(".")


@lru_cache(maxsize=4096)
def check_topic(topic: str) -> Tuple[str, ...]:
    """The words of a topic one publishes; wildcards and empty words are refused."""
    if not isinstance(topic, str):
        raise BadArgumentsError(f"a topic is a string, not {type(topic).__name__}")
    parts = words(topic)
    for word in parts:
        if word == "":
            raise BadArgumentsError(f'topic "{topic}" has an empty word')
        if "*" in word or "#" in word:
            raise BadArgumentsError(f'topic "{topic}": wildcards belong in subscriptions, not in published topics')
    return tuple(parts)


@lru_cache(maxsize=4096)
def check_pattern(pattern: str) -> Tuple[str, ...]:
    if not isinstance(pattern, str):
        raise BadArgumentsError(f"a topic pattern is a string, not {type(pattern).__name__}")
    parts = words(pattern)
    for i, word in enumerate(parts):
        if word == "":
            raise BadArgumentsError(f'topic pattern "{pattern}" has an empty word')
        if word == "#" and i != len(parts) - 1:
            raise BadArgumentsError(f'topic pattern "{pattern}": "#" may only be the last word')
        if word not in ("*", "#") and ("*" in word or "#" in word):
            raise BadArgumentsError(f'topic pattern "{pattern}": wildcards must be whole words')
    return tuple(parts)


def check_group(group: str) -> None:
    if not isinstance(group, str) or not _GROUP.match(group):
        raise BadArgumentsError(f'queue group "{group}": use 1 to 128 letters, digits, "_", "-" or "."')


def subscription_key(pattern: str, group: Optional[str]) -> str:
    return pattern if group is None else f"{pattern}{GROUP_MARK}{group}"


def parse_subscription(key: str) -> Tuple[str, Optional[str]]:
    at = key.find(GROUP_MARK)
    return (key, None) if at < 0 else (key[:at], key[at + len(GROUP_MARK):])


def matches(pattern_words: Tuple[str, ...], topic_words: Tuple[str, ...]) -> bool:
    for i, word in enumerate(pattern_words):
        if word == "#":
            return True
        if i >= len(topic_words):
            return False
        if word != "*" and word != topic_words[i]:
            return False
    return len(pattern_words) == len(topic_words)


@lru_cache(maxsize=8192)
def pattern_matches(pattern: str, topic: str) -> bool:
    """Whether a subscription pattern (well formed or not: a peer's) matches a topic."""
    return matches(tuple(words(pattern)), tuple(words(topic)))
