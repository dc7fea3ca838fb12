"""labc's errors: one class per stable code of docs/errors.md, all of them LabcError.

Branch on the class (``except labc.CallTimeout``) or on ``error.code``; ``error.retryable``
says whether the same call may succeed if simply tried again. An error arriving from another
process is rebuilt as the class its wire name says (``TimeoutError`` on the wire is
``CallTimeout`` here, as Python has a builtin of that name); anything a function raised that is
not labc's own arrives as a ``RemoteError`` naming the remote class.
"""

from __future__ import annotations

from typing import Any, Dict, Optional


class LabcError(Exception):
    """Every error labc raises. ``code`` is stable across versions; ``data`` travels with it."""

    code = "LABC_ERROR"
    #: The class's name in docs/errors.md and on the wire (the TypeScript class).
    wire_name = "LabcError"
    retryable = False

    def __init_subclass__(cls, code: Optional[str] = None, wire_name: Optional[str] = None, retryable: Optional[bool] = None, **kw: Any) -> None:
        """labc's own classes give their code (and ``retryable``) in the class line, one class per
        code without a body that repeats them; the wire name is then the class's name unless
        given. A subclass that gives none keeps its base's, as any Python subclass would."""
        super().__init_subclass__(**kw)
        if code is not None:
            cls.code = code
            cls.wire_name = cls.__name__
        if wire_name is not None:
            cls.wire_name = wire_name
        if retryable is not None:
            cls.retryable = retryable

    def __init__(self, message: str, *, data: Optional[Dict[str, Any]] = None, retryable: Optional[bool] = None):
        super().__init__(message)
        self.message = message
        self.data: Dict[str, Any] = dict(data or {})
        if retryable is not None:
            self.retryable = retryable
        #: The remote stack, when the server sends stacks (errors.send_stack).
        self.remote_stack: Optional[str] = None

    def __str__(self) -> str:
        return self.message


class RemoteError(LabcError, code="LABC_REMOTE_ERROR"):
    """The function ran and raised something that is not one of labc's errors.

    ``remote_name`` is the remote class (``ValueError``, ``TypeError``, a class of the
    service's), ``remote_code`` its own ``code`` when it had one; the remote error's own fields
    are in ``data`` and also readable as attributes, and its cause is ``__cause__``.
    """

    def __init__(self, message: str, remote_name: str = "Error", remote_code: Optional[str] = None, **kw: Any):
        super().__init__(message, **kw)
        self.remote_name = remote_name
        self.remote_code = remote_code

    def __getattr__(self, key: str) -> Any:
        # The thrown error's own fields (`details`...), where they do not shadow ours.
        data = self.__dict__.get("data") or {}
        if key in data:
            return data[key]
        raise AttributeError(key)


class NoSuchFunctionError(LabcError, code="LABC_NO_SUCH_FUNCTION"):
    """No server visible from the caller offers that name in the scope searched."""


class NoSuchHostError(LabcError, code="LABC_NO_SUCH_HOST", retryable=True):
    """``get_host(name)`` named a host that no server of the pool runs on (retryable)."""


class NoSuchServiceError(LabcError, code="LABC_NO_SUCH_SERVICE"):
    """No installed service matches the name (or it is ambiguous, or a path)."""


class StateMismatchError(LabcError, code="LABC_STATE_MISMATCH"):
    """A call pinned to a state id found the function, but no server runs that state."""


class CallTimeout(LabcError, TimeoutError, code="LABC_TIMEOUT", wire_name="TimeoutError", retryable=True):
    """No answer within the timeout; the function may still be running (retryable)."""


class ConnectionLostError(LabcError, ConnectionError, code="LABC_CONNECTION_LOST", retryable=True):
    """The connection to the server closed before the answer (retryable)."""


class BadArgumentsError(LabcError, ValueError, code="LABC_BAD_ARGUMENTS"):
    """The arguments cannot be sent, or do not fit the function's parameters."""


class FrameTooLargeError(LabcError, code="LABC_FRAME_TOO_LARGE"):
    """A peer announced a frame over wire.max_frame_size; that connection was closed."""


class MalformedFrameError(LabcError, code="LABC_BAD_FRAME"):
    """A peer sent bytes that are not a labc message; that connection was closed."""


class LimitError(LabcError, code="LABC_LIMIT"):
    """A peer passed one of the limits (``data["limit"]`` names it); its connection was closed."""


class BadMessageError(LabcError, code="LABC_BAD_MESSAGE"):
    """A peer sent a message whose body does not fit its kind; nothing acted on it."""


class CancelledError(LabcError, code="LABC_CANCELLED"):
    """The caller gave the call up (Ctrl-C, a cancelled task); the server was told."""


class StreamRequiredError(LabcError, code="LABC_STREAM_REQUIRED"):
    """The function returns a stream: read it with ``labc.stream(name, ...)``."""


class ItemLostError(LabcError, code="LABC_ITEM_LOST"):
    """A map item's server was lost while doing it, and the function is not idempotent."""


class MapError(LabcError, code="LABC_MAP_FAILED"):
    """Items of a map failed; ``data["results"]`` holds every item's outcome."""


class NoCallContextError(LabcError, LookupError, code="LABC_NO_CONTEXT"):
    """``labc.context()`` outside a served call."""


class NotPermittedError(LabcError, PermissionError, code="LABC_NOT_PERMITTED"):
    """The other side refuses what was asked of it; the message says how to allow it."""


class NotTrustedError(LabcError, code="LABC_NOT_TRUSTED"):
    """A link could not be secured (another secret, or none); never retryable."""


class ConfigError(LabcError, code="LABC_CONFIG"):
    """A configuration file, variable or flag has an unknown key or a wrong value."""


class RouterUnavailableError(LabcError, code="LABC_NO_ROUTER", retryable=True):
    """No router answers on the root port and none could be started (retryable)."""


class ServiceLoadError(LabcError, code="LABC_SERVICE_LOAD"):
    """A service file does not exist, does not load, or serves nothing."""


class ClosedError(LabcError, code="LABC_CLOSED"):
    """labc was used after ``close()``."""


__all__ = [
    "LabcError", "RemoteError", "NoSuchFunctionError", "NoSuchHostError", "NoSuchServiceError", "StateMismatchError",
    "CallTimeout", "ConnectionLostError", "BadArgumentsError", "FrameTooLargeError", "MalformedFrameError", "LimitError",
    "BadMessageError", "CancelledError", "StreamRequiredError", "ItemLostError", "MapError", "NoCallContextError",
    "NotPermittedError", "NotTrustedError", "ConfigError", "RouterUnavailableError", "ServiceLoadError", "ClosedError",
]

#: Every class by its wire name (the ``name`` of an ``exc``), to rebuild what a peer sent.
BY_WIRE_NAME: Dict[str, type] = {
    cls.wire_name: cls
    for cls in (
        RemoteError, NoSuchFunctionError, NoSuchHostError, NoSuchServiceError, StateMismatchError,
        CallTimeout, ConnectionLostError, BadArgumentsError, FrameTooLargeError, MalformedFrameError,
        LimitError, BadMessageError, CancelledError, StreamRequiredError, ItemLostError, MapError,
        NoCallContextError, NotPermittedError, NotTrustedError, ConfigError, RouterUnavailableError,
        ServiceLoadError, ClosedError,
    )
}
#: The same by code.
BY_CODE: Dict[str, type] = {cls.code: cls for cls in BY_WIRE_NAME.values()}


def error_from_exc(body: Dict[str, Any], function: str, target: str) -> LabcError:
    """The error an ``exc`` body stands for, as the caller of ``function`` on ``target`` sees it.

    labc's own errors (code ``LABC_...`` and a name of docs/errors.md) come back as their class
    with the peer's message; anything else is a RemoteError whose message starts with the
    function and the server, as on the TypeScript side.
    """
    name = body.get("name") if isinstance(body.get("name"), str) else "Error"
    code = body.get("code") if isinstance(body.get("code"), str) else None
    message = body.get("message") if isinstance(body.get("message"), str) else ""
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    cls = BY_WIRE_NAME.get(name)
    if cls is not None and cls is not RemoteError and code == cls.code:
        error: LabcError = cls(message, data=data)
    else:
        error = RemoteError(f"{function} on {target}: {message}", remote_name=name, remote_code=code, data=data)
        cause = body.get("cause")
        if isinstance(cause, BaseException):
            error.__cause__ = cause
        elif cause is not None:
            error.data.setdefault("cause", cause)
    if isinstance(body.get("stack"), str):
        error.remote_stack = body["stack"]
    return error


def exc_body(error: BaseException, with_stack: bool = False) -> Dict[str, Any]:
    """The ``exc`` body for an error a served function raised (or labc raised serving it).

    A LabcError travels as its wire name and code; any other exception as its class name, its
    own ``code`` attribute when it is a string, its own fields as ``data`` and its cause.
    """
    # The keys in the order the TypeScript side writes them: name, message, code, data, cause.
    if isinstance(error, LabcError):
        body: Dict[str, Any] = {"name": error.wire_name, "message": error.message, "code": error.code}
        if error.data:
            body["data"] = error.data
    else:
        body = {"name": type(error).__name__, "message": str(error)}
        code = getattr(error, "code", None)
        if isinstance(code, str):
            body["code"] = code
        own = {k: v for k, v in vars(error).items() if not k.startswith("_") and k != "code"} if hasattr(error, "__dict__") else {}
        if own:
            body["data"] = own
        if error.__cause__ is not None:
            body["cause"] = error.__cause__
    if with_stack:
        import traceback

        body["stack"] = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return body
