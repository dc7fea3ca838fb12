"""The configuration a Python process of labc reads, from the same places as the TypeScript side.

Defaults < ``$XDG_CONFIG_HOME/labc/config.toml`` < ``./labc.toml`` < ``LABC_*`` environment
variables < what the program passes (``labc.configure(...)``), then the secret stored by
``labc secret new`` when nothing above set one. Only the keys a Python process uses are read;
the others of a file are left to the router (the file is shared with it). Files are read with
``tomllib`` (Python 3.11 and newer); on an older Python only the environment is read, which the
error says if a file would have mattered.
"""

from __future__ import annotations

import os
import socket
import stat
from typing import Any, Dict, Optional

from .errors import ConfigError

#: The keys a Python process uses, their defaults and how a text value is read.
KEYS: Dict[str, Any] = {
    "host.name": socket.gethostname(),
    "router.port": 55555,
    "router.address": "127.0.0.1",
    "router.linger": 60.0,
    "server.address": "0.0.0.0",
    "server.drain_timeout": 10.0,
    "server.threads": 16,
    "network.secret": "",
    "network.local_proof": True,
    "network.realm": "",
    "call.timeout": 30.0,
    "call.scope": "network",
    "wire.max_frame_size": 64 * 1024 * 1024,
    "limits.in_flight": 1024,
    "limits.unsent": 8 * 1024 * 1024,
    "limits.queued": 256 * 1024 * 1024,
    "limits.partial_frames": 128 * 1024 * 1024,
    "limits.frame_timeout": 30.0,
    "limits.hello_timeout": 10.0,
    "limits.connections_per_address": 1000,
    "errors.send_stack": False,
}

SECRET_KEYS = ("network.secret",)
SCOPES = ("server", "host", "network")


def env_name(key: str) -> str:
    return "LABC_" + key.replace(".", "_").upper()


def config_dir(env=os.environ) -> str:
    return os.path.join(env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config"), "labc")


def state_dir(env=os.environ) -> str:
    return os.path.join(env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state"), "labc")


def _convert(key: str, raw: Any, where: str) -> Any:
    default = KEYS[key]
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            value = int(raw)
            if value < 0 or (key.endswith(".port") and value > 65535):
                raise ValueError(raw)
            return value
        if isinstance(default, float):
            value = float(raw)
            if value < 0:
                raise ValueError(raw)
            return value
    except (TypeError, ValueError):
        expected = "true or false" if isinstance(default, bool) else "a number, 0 or more"
        raise ConfigError(f"{where}: {key} must be {expected}, not {raw!r}", data={"key": key, "file": where}) from None
    if key == "call.scope" and raw not in SCOPES:
        raise ConfigError(f"{where}: call.scope must be one of {', '.join(SCOPES)}, not {raw!r}", data={"key": key, "file": where})
    return str(raw)


def _read_toml(path: str, values: Dict[str, Any], sources: Dict[str, str]) -> None:
    if not os.path.exists(path):
        return
    try:
        import tomllib  # Python 3.11 and newer
    except ImportError:  # pragma: no cover - older Pythons read only the environment
        return
    try:
        with open(path, "rb") as file:
            table = tomllib.load(file)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: {error}", data={"file": path}) from None
    for section, entries in table.items():
        if not isinstance(entries, dict) or section == "services":
            continue
        for name, raw in entries.items():
            key = f"{section}.{name}"
            if key in KEYS:
                values[key] = _convert(key, raw, path)
                sources[key] = path


def read_secret_file(path: str) -> Optional[str]:
    """What ``labc secret new`` stored; refused when other users may read it (as the router does)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path}: the secret file may be read by other users; chmod 600 {path}", data={"file": path})
    with open(path, encoding="utf-8") as file:
        return file.read().strip() or None


class Config(dict):
    """The values in effect (``config["router.port"]``), where each came from (``sources``), and
    the config folder they were read with (``folder``: the secret's, and a rotation's record)."""

    sources: Dict[str, str]
    folder: str


def load_config(overrides: Optional[Dict[str, Any]] = None, env=os.environ, cwd: Optional[str] = None) -> Config:
    values: Dict[str, Any] = dict(KEYS)
    sources = {key: "default" for key in KEYS}
    _read_toml(os.path.join(config_dir(env), "config.toml"), values, sources)
    _read_toml(os.path.join(cwd or os.getcwd(), "labc.toml"), values, sources)
    for key in KEYS:
        raw = env.get(env_name(key))
        if raw:
            values[key] = _convert(key, raw, f"env {env_name(key)}")
            sources[key] = f"env {env_name(key)}"
    if env.get("LABC_SECRET") and not env.get(env_name("network.secret")):
        values["network.secret"] = env["LABC_SECRET"]
        sources["network.secret"] = "env LABC_SECRET"
    for key, raw in (overrides or {}).items():
        if key not in KEYS:
            raise ConfigError(f"unknown configuration key {key!r} (known: {', '.join(sorted(KEYS))})", data={"key": key})
        values[key] = _convert(key, raw, "configure()")
        sources[key] = "configure()"
    if not values["network.secret"]:
        path = os.path.join(config_dir(env), "secret")
        secret = read_secret_file(path)
        if secret:
            values["network.secret"] = secret
            sources["network.secret"] = path
    config = Config(values)
    config.sources = sources
    config.folder = config_dir(env)
    return config
