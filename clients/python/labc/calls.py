"""Calls and streams of a process: the server chosen in the pool replica from a perspective, then
the call run here (this very process serves it) or sent on the route ServerLinks gives."""

from __future__ import annotations

import contextvars
import time
from typing import Any, Callable, Dict, List, Optional

from .context import CallContext, reset_current, set_current
from .errors import BadArgumentsError, CallTimeout, NoSuchFunctionError, NoSuchHostError, StateMismatchError
from .frames import HEADER, RequestHead
from .pool import Perspective, PoolServer
from .streams import Stream, StreamWaiter
from .waiter import Waiter

DEFAULT_WINDOW = 64


class _Plan:
    """How ``call`` sends a function's calls while nothing it was decided from changes: the
    pool (its generation), the settings, the connection to the one nearest server."""

    __slots__ = ("generation", "timeout_setting", "scope", "target", "route", "head", "timeout", "label")

    def __init__(self, generation: int, timeout_setting: Any, scope: str, target: Optional[PoolServer], route: Any, head: RequestHead, timeout: float) -> None:
        self.generation = generation
        self.timeout_setting = timeout_setting
        self.scope = scope
        self.target = target
        self.route = route
        self.head = head
        self.timeout = timeout
        self.label = target.describe() if target is not None else ""


class Calls:
    def __init__(self, runtime: Any) -> None:
        self.rt = runtime
        self._plans: Dict[str, _Plan] = {}

    # --- choosing a server --------------------------------------------------------------------

    def perspective(self, host: Optional[str] = None) -> Perspective:
        link = self.rt.link
        link.ready()
        own_server = self.rt.identity["id"] if self.rt.server is not None else None
        realm = self.rt.config["network.realm"]
        if host is None:
            return Perspective(link.host_id, own_server, realm=realm)
        host_id = self.host_id_of(host)
        return Perspective(host_id, None, link.host_id, own_server, named=True, realm=realm)

    def host_id_of(self, host: str) -> str:
        link = self.rt.link
        for attempt in (1, 2):
            known = link.pool.hosts()
            known[link.host_id] = link.host
            for host_id, name in known.items():
                if host in (host_id, name):
                    return host_id
            if attempt == 1:
                link.discovered()
                link.sync()
        names = sorted(set(known.values()))
        raise NoSuchHostError(f'no host "{host}" runs a labc server (hosts known: {", ".join(names) or "none"})', data={"host": host})

    def resolve(self, name: str, scope: str, host: Optional[str], state: Optional[str]) -> PoolServer:
        link = self.rt.link
        for attempt in (1, 2):
            at = self.perspective(host)
            target = link.pool.resolve(name, scope, at, state)
            if target is not None:
                return target
            if attempt == 1:
                # A server that registered a moment ago, or a router still finding its hosts.
                link.discovered()
                link.sync()
        if state is not None and link.pool.resolve(name, scope, at) is not None:
            running = sorted({f"{s.state} on {s.host}" for s in link.pool.candidates(name, scope, at)})
            raise StateMismatchError(f'"{name}" runs, but not in state {state} (states running: {", ".join(running)})', data={"function": name, "state": state})
        where = f" on {host}" if host else ""
        raise NoSuchFunctionError(f'no function "{name}" in {scope} scope{where} (no server offers it)', data={"function": name, "scope": scope})

    # --- one call -----------------------------------------------------------------------------

    def call_plain(self, name: str, args: Any) -> Any:
        """``call`` with no options (``labc.call``), in fewer steps in the common case: this
        process does not serve ``name``, one server is nearest, on a connection of our own, and
        the arguments are plain JSON. Its plan is kept per name while the pool, the settings and
        the connection are the same; anything else goes the long way."""
        plan = self.plan_now(name)
        if plan is None and self.may_plan():
            plan = self.make_plan(name)
        if plan is None or plan.route is None:
            return self.call(name, list(args))
        route = plan.route
        connection = route.connection
        args_json = plan.head.args_json(args)
        if args_json is None or HEADER + len(plan.head.head) + len(args_json) + len(plan.head.tail) > connection.max_frame:
            return self.call(name, list(args))  # encode says what cannot be sent, or how large
        waiter = Waiter(name, plan.label)
        return self._exchange(route, waiter, plan.timeout, name, plan.target, lambda: connection.request_head(plan.head, args_json, waiter))

    def plan_now(self, name: str) -> Optional[_Plan]:
        """The plan kept for ``name`` while it holds: None when none is, or when what it was made
        from changed (``make_plan`` makes one anew, when ``may_plan``)."""
        rt = self.rt
        link = rt.link
        config = rt.config
        plan = self._plans.get(name)
        router = link.connection
        if (plan is None or plan.generation != link.pool.generation or rt.server is not None
                or plan.timeout_setting != config["call.timeout"] or plan.scope != config["call.scope"]
                or router is None or router.closed
                or (plan.route is not None and (plan.route.connection.closed or rt.links.current(plan.target) is not plan.route.connection))):
            return None
        return plan

    def may_plan(self) -> bool:
        """Whether calls follow plans now: linked to the router, serving nothing."""
        router = self.rt.link.connection
        return router is not None and not router.closed and self.rt.server is None

    def make_plan(self, name: str) -> _Plan:
        """How calls of ``name`` go while the pool is the same: its ``route`` None when the long
        way (several servers as near, none, through the routers, server scope)."""
        rt = self.rt
        config = rt.config
        scope = config["call.scope"]
        timeout_setting = config["call.timeout"]
        timeout = float(timeout_setting)
        generation = rt.link.pool.generation  # before resolving: a change meanwhile makes it stale
        nearest = rt.link.pool.nearest(name, scope, self.perspective(None)) if scope != "server" else []
        route = rt.links.route(nearest[0]) if len(nearest) == 1 else None
        if route is not None and route.target is not None:
            route = None
        plan = _Plan(generation, timeout_setting, scope, nearest[0] if route else None, route, RequestHead(name, int(timeout * 1000)), timeout)
        if len(self._plans) > 10000:
            self._plans.clear()
        self._plans[name] = plan
        return plan

    def call(self, name: str, args: List[Any], timeout: Optional[float] = None, scope: Optional[str] = None,
             host: Optional[str] = None, state: Optional[str] = None) -> Any:
        rt = self.rt
        timeout = float(rt.config["call.timeout"]) if timeout is None else float(timeout)
        scope = scope or rt.config["call.scope"]
        if host is None and state is None and rt.server is not None and name in rt.server.functions:
            return self.call_here(name, args, timeout)
        if scope == "server":
            raise NoSuchFunctionError(f'no function "{name}" in server scope (not in this process)', data={"function": name, "scope": scope})
        target = self.resolve(name, scope, host, state)
        return self.send(target, name, args, timeout)

    def send(self, target: PoolServer, name: str, args: List[Any], timeout: float) -> Any:
        if self.rt.server is not None and target.id == self.rt.identity["id"]:
            return self.call_here(name, args, timeout)
        route = self.rt.links.route(target)
        waiter = Waiter(name, target.describe())
        body = {"fn": name, "args": list(args), "timeoutMs": int(timeout * 1000)}
        return self._exchange(route, waiter, timeout, name, target, lambda: route.request(body, waiter))

    def _exchange(self, route: Any, waiter: Waiter, timeout: float, name: str, target: PoolServer, request: Callable[[], int]) -> Any:
        """Sends the request (``request()``, which gives its id) and waits for its answer."""
        connection = route.connection
        # This thread reads the answer itself when no other thread reads the connection.
        claimed = connection.claim_reading()
        try:
            id = request()
            try:
                answered = connection.wait(waiter, timeout, claimed)
            except KeyboardInterrupt:
                # Ctrl-C: the server is told, and the function's context says it was cancelled.
                route.cancel(id)
                raise
        finally:
            if claimed:
                connection.release_reading()  # when an exception left before wait gave it back
        if not answered:
            route.cancel(id)
            raise CallTimeout(f'call to "{name}" on {target.describe()} timed out after {int(timeout * 1000)} ms',
                              data={"function": name, "timeoutMs": int(timeout * 1000), "target": target.describe()})
        if waiter.error is not None:
            raise waiter.error
        return waiter.value

    def call_here(self, name: str, args: List[Any], timeout: float) -> Any:
        """A function of this very process: run in the caller's thread, as a call from here."""
        server = self.rt.server
        local = server.functions.get(name)
        call = CallContext(name, time.time() + timeout, None)
        token = set_current(call)
        try:
            if local is not None and local.serial is not None:
                return local.serial.submit(contextvars.copy_context().run, server.invoke, name, list(args), call, False).result()
            return server.invoke(name, list(args), call, remote=False)
        finally:
            reset_current(token)

    def call_here_reqpub(self, topic: str, args: List[Any], timeout: float) -> Any:
        return self.call_here("labc.reqpub", [topic, *args], timeout)

    # --- streams ------------------------------------------------------------------------------

    def stream(self, name: str, args: List[Any], timeout: Optional[float] = None, scope: Optional[str] = None,
               host: Optional[str] = None, state: Optional[str] = None, window: int = DEFAULT_WINDOW) -> Stream:
        rt = self.rt
        if not isinstance(window, int) or window < 1 or window > 2 ** 31:
            raise BadArgumentsError(f"stream window must be a whole number from 1, not {window!r}")
        timeout = float(rt.config["call.timeout"]) if timeout is None else float(timeout)
        scope = scope or rt.config["call.scope"]
        target = self.resolve(name, scope, host, state)
        route = rt.links.route(target)
        waiter = StreamWaiter(name, target.describe())
        id = route.request({"fn": name, "args": list(args), "timeoutMs": int(timeout * 1000), "credit": window}, waiter)
        return Stream(name, waiter, route, id, window, timeout)

    # --- every server -------------------------------------------------------------------------

    def call_all(self, name: str, args: List[Any], timeout: Optional[float] = None, scope: Optional[str] = None,
                 host: Optional[str] = None) -> List[dict]:
        """Calls ``name`` on every server offering it; one dict per server: host, server, pid,
        port and ``value`` or ``error`` (the exception)."""
        rt = self.rt
        timeout = float(rt.config["call.timeout"]) if timeout is None else float(timeout)
        rt.link.sync()
        targets = rt.link.pool.candidates(name, scope or rt.config["call.scope"], self.perspective(host))
        results: List[dict] = []
        futures = []
        for target in targets:
            result = {"host": target.host, "server": target.id, "pid": target.pid, "port": target.port}
            results.append(result)
            futures.append((result, rt.background(self.send, target, name, args, timeout)))
        for result, future in futures:
            try:
                result["value"] = future.result()
            except Exception as error:
                result["error"] = error
        return results
