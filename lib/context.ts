import { CancelledError, NoCallContextError, TimeoutError } from "./errors.js";
import { deadlines, type Deadline } from "./net/deadline-wheel.js";
import type { Cancellable } from "./net/peer-requests.js";

/** How long after its deadline a call's signal fires when the caller did not cancel it. */
const LATE_MS = 250;

/** Who made a call, as its connection's hello says. */
export interface Caller {
  /** The calling process's id (a server id when it serves). */
  id: string;
  host: string;
  hostId: string;
  pid: number;
}

/**
 * What a function being called can know about its call: `labc.context()` inside it. Its
 * `signal` fires when the caller cancels (its own AbortSignal, a timeout, Ctrl-C in the CLI),
 * when the caller's connection is lost, when the deadline passes, or when this server stops
 * past its drain deadline.
 */
export class CallContext implements Cancellable {
  private controller: AbortController | undefined;
  private reason: unknown;
  private cancelled = false;
  private timer: Deadline | null = null;
  private done = false;
  private who: Caller | undefined;

  constructor(
    /** The name the function was called by. */
    readonly functionName: string,
    /** When the caller stops waiting (ms since the epoch), if it said. */
    readonly deadline: number | undefined,
    /** The hello of the connection the call came on: read only if `caller` is. */
    private readonly from: (Caller & { role?: string }) | undefined,
    /**
     * Whether the call came from another host: by the address it arrived from, or because the
     * router that passed it on says so; never by what the caller claims about itself.
     */
    readonly fromOtherHost = false,
    /** The request's `trace` (`<traceId>-<spanId>`), when the caller's hooks sent one. */
    readonly trace?: string,
    /**
     * Whether the call came from another site over the NATS backplane (its gateway relayed it, or
     * it came on this server's own NATS subject): its caller proved no network secret, only a
     * NATS login. Implies `fromOtherHost`.
     */
    readonly fromOtherSite = false,
  ) {}

  /** Undefined when the call came through the routers, or from this very process. */
  get caller(): Caller | undefined {
    const from = this.from;
    if (!from || from.role === "router") return undefined;
    return (this.who ??= { id: from.id, host: from.host, hostId: from.hostId, pid: from.pid });
  }

  /** Fires when nobody waits for the result any more. Made on first use: most calls never ask. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort(this.reason);
      else if (this.deadline !== undefined && !this.done) {
        // The caller's own cancel comes at its deadline; this is for when it cannot (a caller
        // gone silent), a little later, so that a result made just in time still leaves.
        this.timer = deadlines.add(Math.max(0, this.deadline - Date.now()) + LATE_MS, () => {
          this.timer = null;
          this.cancel(new TimeoutError(this.functionName, 0));
        });
      }
    }
    return this.controller.signal;
  }

  /** Whether the call was cancelled (cheaper than reading `signal.aborted`). */
  get aborted(): boolean {
    return this.cancelled;
  }

  cancel(reason: unknown = new CancelledError(this.functionName)): void {
    if (this.cancelled || this.done) return;
    this.cancelled = true;
    this.reason = reason;
    this.controller?.abort(reason);
    this.finish();
  }

  /** The function returned: its deadline no longer matters. */
  finish(): void {
    this.done = true;
    if (this.timer) deadlines.cancel(this.timer);
    this.timer = null;
  }
}

/** The context of the function running right now, during the synchronous part of its call. */
let current: CallContext | undefined;

/** Calls `fn` with `context` as what `labc.context()` returns inside it (no closure per call). */
export function runWith(context: CallContext, fn: Function, thisArg: unknown, args: unknown[]): unknown {
  const outer = current;
  current = context;
  try {
    return fn.apply(thisArg, args);
  } finally {
    current = outer;
  }
}

/**
 * The context of the call being served. Read it at the start of the function, before its first
 * `await`, and keep it: labc sets it only while the function's synchronous part runs (tracking
 * it across awaits would slow every promise of the process down).
 */
export function context(): CallContext {
  if (!current) throw new NoCallContextError();
  return current;
}
