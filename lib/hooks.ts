import { AsyncLocalStorage } from "node:async_hooks";
import { randomFillSync } from "node:crypto";
import type { CallContext, Caller } from "./context.js";
import { warn } from "./log.js";

/**
 * Code run around every call and publication of this process, on the calling and the serving
 * side: `labc.addHook({ before, after, failed })`. Logging, permission checks, validation and
 * tracing are written with it. Without a hook, nothing of this runs: the call path only reads
 * `hooks.active`.
 */
export interface Hook {
  /**
   * Before the call leaves (calling side) or the function runs (serving side). Throwing, or a
   * promise that rejects, refuses the call with that error; `event.args` may be replaced.
   */
  before?(event: HookEvent): void | Promise<void>;
  /** Once the call was answered (calling side) or the function returned (serving side). */
  after?(event: HookEvent, result: unknown): void;
  /** Once it failed, a `before` having refused it included. */
  failed?(event: HookEvent, error: unknown): void;
}

/** One call or publication as hooks see it, the same object from `before` to `after`/`failed`. */
export interface HookEvent {
  kind: "call" | "publication";
  /** Calling: this process calls or publishes. Serving: a function or subscriber of it runs. */
  side: "calling" | "serving";
  /** The function called, or the topic published. */
  name: string;
  args: unknown[];
  /** Serving side: who called, as its connection's hello says (undefined through the routers or in-process). */
  caller?: Caller;
  /** A subscriber (serving side of a publication): the method or function that runs. */
  subscriber?: string;
  /** When the caller stops waiting (ms since the epoch), if it said. */
  deadline?: number;
  /**
   * 32 hexadecimal digits shared by a call and every call made while serving it, on any host:
   * it travels in the request (W3C Trace Context's sizes, so spans can go to OpenTelemetry).
   */
  traceId: string;
  /** 16 hexadecimal digits naming this side of this call. */
  spanId: string;
  /** The span this one is part of: the calling side's, for a served call; the served call's, for a call made while serving. */
  parentSpanId?: string;
  /** `performance.now()` as it began. */
  startedAt: number;
  /** Set before `after` and `failed`: how long it took, in milliseconds. */
  durationMs?: number;
  /** For the hooks' own use: what `before` keeps here, `after` finds. */
  data: Record<string, unknown>;
}

/** A request's `trace` field: `<traceId>-<spanId of the calling side>`. */
const TRACE = /^[0-9a-f]{32}-[0-9a-f]{16}$/;

class Hooks {
  private list: Hook[] = [];
  /** The event being served, across its awaits, for the calls it makes. Made when the first hook is added. */
  private serving: AsyncLocalStorage<HookEvent> | undefined;

  /** Read on every call: false keeps the call path as it is without hooks. */
  active = false;

  add(hook: Hook): () => void {
    if (typeof hook !== "object" || hook === null) throw new TypeError("labc.addHook takes an object with before, after or failed");
    for (const key of Object.keys(hook)) {
      if (key !== "before" && key !== "after" && key !== "failed") throw new TypeError(`labc.addHook: unknown hook "${key}" (before, after, failed)`);
    }
    this.serving ??= new AsyncLocalStorage();
    this.list = [...this.list, hook];
    this.active = true;
    return () => {
      this.list = this.list.filter((other) => other !== hook);
      this.active = this.list.length > 0;
    };
  }

  /**
   * A call this process makes: `send` carries it with the `trace` for the request. The trace
   * continues the call being served, when there is one.
   */
  call<T>(name: string, args: unknown[], timeoutMs: number, send: (args: unknown[], trace: string) => Promise<T>): Promise<T> {
    const parent = this.serving?.getStore();
    const event = this.event("call", "calling", name, args, parent?.traceId, parent?.spanId);
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) event.deadline = Date.now() + timeoutMs;
    return settled(() => this.around(event, () => send(event.args, `${event.traceId}-${event.spanId}`)) as Promise<T>);
  }

  /** A publication this process makes. */
  publish(topic: string, args: unknown[], send: (args: unknown[]) => Promise<number>): Promise<number> {
    const parent = this.serving?.getStore();
    const event = this.event("publication", "calling", topic, args, parent?.traceId, parent?.spanId);
    return settled(() => this.around(event, () => send(event.args)) as Promise<number>);
  }

  /**
   * A function of this process runs for `call`: returns what `run` returns (a value, or a
   * promise when it or a hook is asynchronous), and the calls it makes continue its trace.
   */
  serve(call: CallContext, args: unknown[], run: (args: unknown[]) => unknown): unknown {
    const trace = call.trace !== undefined && TRACE.test(call.trace) ? call.trace : undefined;
    const event = this.event("call", "serving", call.functionName, args, trace?.slice(0, 32), trace?.slice(33));
    event.caller = call.caller;
    event.deadline = call.deadline;
    return this.around(event, () => this.serving!.run(event, run, event.args));
  }

  /** A subscriber of this process gets a publication. */
  deliver(subscriber: string, topic: string, args: unknown[], run: (args: unknown[]) => unknown): unknown {
    const event = this.event("publication", "serving", topic, args, undefined, undefined);
    event.subscriber = subscriber;
    return this.around(event, () => this.serving!.run(event, run, event.args));
  }

  private event(kind: HookEvent["kind"], side: HookEvent["side"], name: string, args: unknown[], traceId: string | undefined, parentSpanId: string | undefined): HookEvent {
    const event: HookEvent = {
      kind,
      side,
      name,
      args,
      traceId: traceId ?? randomHex(16),
      spanId: randomHex(8),
      startedAt: performance.now(),
      data: {},
    };
    if (parentSpanId !== undefined) event.parentSpanId = parentSpanId;
    return event;
  }

  /**
   * Runs the `before` hooks, then `run`, then `after` or `failed`. Stays synchronous when the
   * hooks and `run` are: a subscriber's or a function's throw reaches its caller as it would
   * without hooks.
   */
  private around(event: HookEvent, run: () => unknown): unknown {
    const hooks = this.list;
    let result: unknown;
    try {
      let waiting: Promise<void> | undefined;
      for (const hook of hooks) {
        if (!hook.before) continue;
        if (waiting) waiting = waiting.then(() => hook.before!(event));
        else {
          const started = hook.before(event);
          if (started instanceof Promise) waiting = started;
        }
      }
      result = waiting ? waiting.then(run) : run();
    } catch (error) {
      this.failed(hooks, event, error);
      throw error;
    }
    if (!(result instanceof Promise)) {
      this.after(hooks, event, result);
      return result;
    }
    return result.then(
      (value) => {
        this.after(hooks, event, value);
        return value;
      },
      (error) => {
        this.failed(hooks, event, error);
        throw error;
      },
    );
  }

  private after(hooks: Hook[], event: HookEvent, result: unknown): void {
    event.durationMs = performance.now() - event.startedAt;
    for (const hook of hooks) if (hook.after) guarded(() => hook.after!(event, result), "after", event);
  }

  private failed(hooks: Hook[], event: HookEvent, error: unknown): void {
    event.durationMs = performance.now() - event.startedAt;
    for (const hook of hooks) if (hook.failed) guarded(() => hook.failed!(event, error), "failed", event);
  }
}

/**
 * Random ids from a pool filled a few kilobytes at a time: asking the system for 8 or 16 bytes
 * per id costs a microsecond or more each, which a hook that does nothing would pay on every call.
 */
const pool = Buffer.alloc(8192);
let taken = pool.length;

function randomHex(bytes: number): string {
  if (taken + bytes > pool.length) {
    randomFillSync(pool);
    taken = 0;
  }
  taken += bytes;
  return pool.toString("hex", taken - bytes, taken);
}

/** A call or publication always answers with a promise: a `before` that throws rejects it. */
function settled<T>(start: () => Promise<T>): Promise<T> {
  try {
    return start();
  } catch (error) {
    return Promise.reject(error);
  }
}

/** A hook that throws in `after` or `failed` is reported, and the call goes on as it was. */
function guarded(fn: () => void, which: string, event: HookEvent): void {
  try {
    fn();
  } catch (error) {
    warn(`hook "${which}" threw on ${event.side} ${event.kind} "${event.name}"`, error);
  }
}

/** The process's hooks: every runtime and server of the process runs them. */
export const hooks = new Hooks();
