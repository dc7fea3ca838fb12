"""A Python service file (``python -m labc serve driver.py``, and services a router runs): imported
as a module of its own; what it serves is every function it registered at import
(``@labc.register`` at top level) and one instance of each class defined in it that has
``@labc.register`` or ``@labc.subscribe`` methods, constructed with the keyword arguments of its
``[services.<ClassName>]`` table in the config (``restart`` and ``needs`` excepted: those are the
supervisor's), or with none."""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import sys
from types import ModuleType
from typing import Any, Dict, List

from .config import config_dir
from .decorators import REGISTER_MARK, SUBSCRIBE_MARK, marks
from .errors import ServiceLoadError

#: What a router's supervisor keeps for itself in a service's table.
SUPERVISOR_KEYS = ("restart", "needs")


def load_module(path: str) -> ModuleType:
    """Imports the file as a module named after it; its folder comes first on ``sys.path`` so
    that it imports its neighbours, as a script run by ``python driver.py`` would."""
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise ServiceLoadError(f"{full}: no such file")
    if not full.endswith(".py"):
        raise ServiceLoadError(f"{full}: a Python service is a .py file")
    name = re.sub(r"\W", "_", os.path.splitext(os.path.basename(full))[0]) or "service"
    if name in sys.modules:
        name = f"labc_service_{name}"
    spec = importlib.util.spec_from_file_location(name, full)
    if spec is None or spec.loader is None:
        raise ServiceLoadError(f"{full}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # A linked service (labc install -e) imports the neighbours of the file it links to.
    sys.path.insert(0, os.path.dirname(os.path.realpath(full)))
    sys.modules[name] = module
    import labc

    try:
        # What the file registers at import is kept, not served, until the caller serves it
        # (with its state id), or only lists it (serve --list).
        with labc.runtime().deferred():
            spec.loader.exec_module(module)
    except BaseException as error:
        sys.modules.pop(name, None)
        if isinstance(error, KeyboardInterrupt):
            raise
        raise ServiceLoadError(f"{full}: does not load: {type(error).__name__}: {error}") from error
    return module


def _decorated(cls: type) -> bool:
    for attribute in dir(cls):
        member = getattr(cls, attribute, None)
        target = getattr(member, "__func__", member)
        if callable(target) and (marks(target, REGISTER_MARK) or marks(target, SUBSCRIBE_MARK)):
            return True
    return False


def service_classes(module: ModuleType) -> List[type]:
    """The classes defined in the module (not imported into it) with decorated methods, in the
    order the file defines them (a module's namespace keeps it)."""
    return [value for value in vars(module).values()
            if inspect.isclass(value) and value.__module__ == module.__name__ and _decorated(value)]


def service_functions(module: ModuleType) -> List[str]:
    """The names the module's top-level ``@labc.register`` functions are offered under."""
    names: List[str] = []
    for value in vars(module).values():
        if inspect.isfunction(value) and value.__module__ == module.__name__:
            for options in marks(value, REGISTER_MARK):
                names.append(options.get("name") or value.__name__)
    return names


def service_subscriptions(module: ModuleType) -> List[str]:
    """The patterns the module's top-level ``@labc.subscribe`` functions subscribe to."""
    return [options["pattern"] for value in vars(module).values()
            if inspect.isfunction(value) and value.__module__ == module.__name__
            for options in marks(value, SUBSCRIBE_MARK)]


def service_name(path: str, classes: List[type]) -> str:
    """A service is named after its first class; a file of functions alone after the file
    (``instrument_server.py``: ``InstrumentServer``)."""
    if classes:
        return classes[0].__name__
    stem = os.path.splitext(os.path.basename(path))[0]
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[\W_]+", stem) if part) or "Service"


def service_settings(name: str, cwd: str = "") -> Dict[str, Any]:
    """``[services.<name>]`` of ``config.toml`` then ``./labc.toml`` (the later wins key by key),
    without ``restart`` and ``needs``. Python 3.11 and newer read them (tomllib); older ones none."""
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.9 and 3.10
        return {}
    settings: Dict[str, Any] = {}
    for path in (os.path.join(config_dir(), "config.toml"), os.path.join(cwd or os.getcwd(), "labc.toml")):
        try:
            with open(path, "rb") as file:
                table = tomllib.load(file).get("services", {}).get(name)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as error:
            raise ServiceLoadError(f"{path}: {error}") from None
        if isinstance(table, dict):
            settings.update({key: value for key, value in table.items() if key not in SUPERVISOR_KEYS})
    return settings


def instances_of(classes: List[type], path: str) -> List[Any]:
    """One instance of each class, given its settings as keyword arguments."""
    instances = []
    for cls in classes:
        options = service_settings(cls.__name__)
        try:
            instances.append(cls(**options))
        except Exception as error:
            raise ServiceLoadError(f"{os.path.abspath(path)}: {cls.__name__} could not be constructed: {type(error).__name__}: {error}") from error
    return instances
