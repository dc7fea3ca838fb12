import type { Hook, HookEvent } from "./hooks.js";

/**
 * The hook that ships as an example: reports every call and publication of this process that
 * took `overMs` or longer, on either side, with who called and the trace it belongs to:
 * `labc.addHook(labc.slowCalls(250))`. `report` takes each line (standard error by default).
 */
export function slowCalls(overMs = 100, report: (line: string) => void = (line) => console.warn(line)): Hook {
  if (!(overMs >= 0)) throw new RangeError(`slowCalls: overMs must be a number of milliseconds from 0, not ${overMs}`);
  const check = (event: HookEvent, outcome: string) => {
    if (event.durationMs! >= overMs) report(describe(event, outcome));
  };
  return {
    after: (event) => check(event, "answered"),
    failed: (event, error) => check(event, `failed with ${(error as { code?: string })?.code ?? (error as Error)?.name ?? "an error"}`),
  };
}

function describe(event: HookEvent, outcome: string): string {
  const what =
    event.kind === "call"
      ? `${event.side === "calling" ? "call of" : "serving"} ${event.name}`
      : event.side === "calling"
        ? `publishing ${event.name}`
        : `subscriber ${event.subscriber} of ${event.name}`;
  const from = event.caller ? ` for ${event.caller.host} pid ${event.caller.pid}` : "";
  return `labc: slow ${what}${from}: ${outcome} after ${event.durationMs!.toFixed(1)} ms (trace ${event.traceId})`;
}
