"""Following a rotation of the network secret (``labc secret rotate``), as a TypeScript process
does (lib/trust/rotation.ts, lib/trust/network-key.ts, docs/security.md#key-handling-and-rotation).

Each host's router writes the rotation it learns next to the secret, in
``secret-rotation.json`` of the config folder (mode 0600): the next secret, the key id of the
one it replaces (``from``) and when that one stops counting (``until``, ms since the epoch).
A process looks at that file's mtime when it makes or takes a connection, at most every
LOOK_EVERY_S (no thread of its own). Until ``until`` it takes a link proved with either secret
and dials with the next one first (the current one on a new connection when that is refused);
from then on only the next one counts. A record of another secret's rotation changes nothing.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from .config import config_dir, read_secret_file
from .errors import ConfigError, LabcError
from .tls import NetworkKey, network_key

#: How often, at most, a process looks whether the record changed (the TypeScript side polls as often).
LOOK_EVERY_S = 2.0


def rotation_file(folder: str) -> str:
    return os.path.join(folder, "secret-rotation.json")


def read_rotation(folder: str) -> Optional[Dict[str, Any]]:
    """The rotation recorded on this host, if any: refused (ConfigError) when other users may
    read it, as it holds a secret; a record cut short or of another form counts as none."""
    path = rotation_file(folder)
    try:
        info = os.stat(path)
    except OSError:
        return None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path}: other users can read this file, which holds a secret: run `chmod 600 {path}`", data={"file": path})
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
        network_key(record["next"])
    except (OSError, ValueError, TypeError, KeyError, LabcError):
        return None
    until, origin = record.get("until"), record.get("from")
    if not isinstance(origin, str) or not isinstance(until, int) or isinstance(until, bool):
        return None
    return record


def settle_rotation(folder: str, record: Dict[str, Any]) -> None:
    """Once the window ended: the secret file, if it still holds the old secret, gets the new one
    (whole or not at all), as whichever process of the host sees the end first does."""
    path = os.path.join(folder, "secret")
    try:
        stored = read_secret_file(path)
        if not stored or network_key(stored).id != record["from"]:
            return
        partial = f"{path}.{os.getpid()}.tmp"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(f"{record['next']}\n")
        os.chmod(partial, 0o600)
        os.replace(partial, path)
    except (OSError, LabcError):
        pass  # the router says why, on its next look


def _now_ms() -> float:
    return time.time() * 1000


class KeyRing:
    """The keys of the configured secret, following the rotations recorded in ``folder``.

    Tells ``tls`` which key a client offers (``dial_order``) and which PSK a server takes for a
    client's identity (``psk_for``); ``id`` is the key id in force. Used from several threads.
    """

    def __init__(self, secret: str, folder: str) -> None:
        self.folder = folder
        self._secret = secret.strip()
        self._current = network_key(secret)
        self._next: Optional[Tuple[str, NetworkKey, float]] = None
        self.retired: Optional[NetworkKey] = None
        self._seen: Optional[Tuple[int, int, int]] = None
        self._looked = float("-inf")
        self._lock = threading.Lock()
        #: Whether links to processes of this host prove the secret without TLS (``network.local_proof``).
        self.local_proof = True

    def look(self, force: bool = False) -> None:
        """Reads the record when it changed, at most every LOOK_EVERY_S (unless ``force``).
        Raises ConfigError for a record other users may read."""
        now = time.monotonic()
        with self._lock:
            if not force and now - self._looked < LOOK_EVERY_S:
                return
            self._looked = now
            try:
                info = os.stat(rotation_file(self.folder))
                seen: Optional[Tuple[int, int, int]] = (info.st_mtime_ns, info.st_ino, info.st_size)
            except OSError:
                seen = None
            if seen == self._seen or seen is None:
                self._seen = seen
                return
            record = read_rotation(self.folder)
            self._seen = seen
            if record is None:
                return
            current = self._settled()
            if record["from"] == current.id:
                next_key = network_key(record["next"])
                if next_key.id != current.id:
                    self._next = (record["next"].strip(), next_key, float(record["until"]))
            ended = _now_ms() >= record["until"]
        if ended:
            settle_rotation(self.folder, record)

    def _settled(self) -> NetworkKey:
        """The key in force (under the lock): the next one once the window ended."""
        if self._next is not None and _now_ms() >= self._next[2]:
            self.retired = self._current
            self._secret, self._current, _ = self._next
            self._next = None
        return self._current

    @property
    def id(self) -> str:
        with self._lock:
            return self._settled().id

    @property
    def next_id(self) -> Optional[str]:
        """The next secret's key id during a rotation, else None."""
        with self._lock:
            self._settled()
            return self._next[1].id if self._next else None

    def secret_text(self) -> str:
        """The secret in force (for a router this process starts)."""
        with self._lock:
            self._settled()
            return self._secret

    def dial_order(self) -> List[NetworkKey]:
        """The keys a client offers, in order: the next first during a rotation, then the current."""
        with self._lock:
            current = self._settled()
            return [self._next[1], current] if self._next else [current]

    def psk_for(self, identity: Optional[str]) -> Optional[bytes]:
        """The PSK of a client's identity, if it names a secret in force (either, during a rotation)."""
        for key in self.dial_order():
            if identity == key.identity:
                return key.psk
        return None


_rings: Dict[Tuple[str, str], KeyRing] = {}
_rings_lock = threading.Lock()


def key_ring(secret: str, folder: Optional[str] = None) -> KeyRing:
    """The one KeyRing of ``secret`` and the config folder (this environment's by default)."""
    folder = folder or config_dir()
    with _rings_lock:
        ring = _rings.get((secret, folder))
        if ring is None:
            ring = _rings[(secret, folder)] = KeyRing(secret, folder)
        return ring


def keys_of(config: Any) -> Optional[KeyRing]:
    """The KeyRing of a config's secret and folder; None in an open network (no secret)."""
    secret = config["network.secret"]
    if not secret:
        return None
    ring = key_ring(secret, getattr(config, "folder", None))
    ring.local_proof = bool(config["network.local_proof"])
    return ring
