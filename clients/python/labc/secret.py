"""What a network secret gives (docs/protocol.md#secured-links; lib/trust/secret.ts and
network-key.ts on the TypeScript side): its form checked without ever repeating it, and the keys
derived from it by HKDF-SHA256, written with the standard library's ``hmac`` and ``hashlib``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Dict, Optional

from .errors import ConfigError

PREFIX = "labc1_"
_FORMAT = re.compile(r"^labc1_[A-Za-z0-9_-]{43}$")


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF (RFC 5869) with SHA-256: extract, then expand to ``length`` bytes."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def secret_problem(text: object) -> str:
    """What is wrong with a text that is not a secret, without repeating any of it (a near miss is
    nearly the secret): lengths and kinds of characters only, as lib/trust/secret.ts says them."""
    unrepeated = "; it is not repeated here"
    if not isinstance(text, str):
        return f"it is a {type(text).__name__}, not a text{unrepeated}"
    text = text.strip()
    if not text:
        return "it is empty"
    body_length = 43
    problems = []
    prefixed = text.startswith(PREFIX)
    if not prefixed:
        at = text.find(PREFIX)
        problems.append(f"it does not start with {PREFIX}" + (f" ({at} other characters come before it)" if at > 0 else ""))
        if len(text) != len(PREFIX) + body_length:
            problems.append(f"it has {len(text)} characters where a secret has {len(PREFIX) + body_length}")
    elif len(text) != len(PREFIX) + body_length:
        problems.append(f"it has {len(text) - len(PREFIX)} characters after {PREFIX} where a secret has {body_length}")
    strange = [c for c in (text[len(PREFIX):] if prefixed else text) if not re.match(r"[A-Za-z0-9_-]", c)]
    if strange:
        kinds = []
        for c in strange:
            kind = ("spaces or line breaks" if c.isspace() else "quotes" if c in "\"'`" else "+, / or = of plain base64 where a secret is base64url"
                    if c in "+/=" else "non-ASCII characters" if not 0x20 <= ord(c) <= 0x7E else "punctuation")
            if kind not in kinds:
                kinds.append(kind)
        problems.append(f"{len(strange)} of its characters are not letters, digits, - or _ ({'; '.join(kinds)})")
    return ("; ".join(problems) or f"it is not {PREFIX} and {body_length} letters, digits, - or _") + unrepeated


def parse_secret(text: str) -> bytes:
    """The secret's 32 bytes, or a ConfigError naming ``network.secret`` and what is wrong (never the text)."""
    trimmed = text.strip() if isinstance(text, str) else text
    if not isinstance(trimmed, str) or not _FORMAT.match(trimmed):
        raise ConfigError(f"network.secret: not a labc network secret (make one with `labc secret new`, copy it whole): {secret_problem(text)}",
                          data={"key": "network.secret"})
    return base64.urlsafe_b64decode(trimmed[len(PREFIX):] + "=")


class NetworkKey:
    """What a secret gives a link: the PSK, and the key id that names it (in the clear) and tells
    two secrets apart in messages without saying anything about either."""

    __slots__ = ("psk", "id", "identity", "local_key")

    def __init__(self, secret: str) -> None:
        raw = parse_secret(secret)
        self.psk = hkdf_sha256(raw, b"labc network", b"tls psk", 32)
        #: What a link between two processes of this host proves instead of TLS (local_proof.py).
        self.local_key = hkdf_sha256(raw, b"labc network", b"local proof", 32)
        self.id = hkdf_sha256(raw, b"labc network", b"key id", 8).hex()
        self.identity = f"labc1 {self.id}"

    def psk_for(self, identity: Optional[str]) -> Optional[bytes]:
        return self.psk if identity == self.identity else None


_keys: Dict[str, NetworkKey] = {}


def network_key(secret: str) -> NetworkKey:
    key = _keys.get(secret)
    if key is None:
        key = _keys[secret] = NetworkKey(secret)
    return key
