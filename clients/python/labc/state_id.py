"""The state id of a service file or folder, as lib/services/state-id.ts computes it: the last git
commit that touched it when it lies in a git repository with no uncommitted change there, else
the first 12 hex digits of a sha256 of its files (names relative to it, and contents)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from typing import List, Optional


def _git_commit(folder: str, target: str) -> Optional[str]:
    try:
        status = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--", target], capture_output=True, text=True, timeout=10)
        if status.returncode != 0 or status.stdout.strip():
            return None
        log = subprocess.run(["git", "-C", folder, "log", "-1", "--format=%H", "--", target], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = log.stdout.strip()
    return commit[:12] if log.returncode == 0 and commit else None


def _files_of(path: str) -> List[str]:
    if not os.path.isdir(path):
        return [path]
    out: List[str] = []
    for name in os.listdir(path):
        if name in ("node_modules", ".git"):
            continue
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            out.extend(_files_of(full))
        elif os.path.isfile(full):
            out.append(full)
    return sorted(out)


def content_hash(path: str) -> str:
    digest = hashlib.sha256()
    root = path if os.path.isdir(path) else os.path.dirname(path)
    for file in _files_of(path):
        with open(file, "rb") as handle:
            digest.update(os.path.relpath(file, root).encode())
            digest.update(b"\0")
            digest.update(handle.read())
            digest.update(b"\0")
    return digest.hexdigest()[:12]


def state_id(path: str) -> str:
    real = os.path.realpath(path)
    folder = real if os.path.isdir(real) else os.path.dirname(real)
    target = "." if os.path.isdir(real) else os.path.basename(real)
    return _git_commit(folder, target) or content_hash(real)
