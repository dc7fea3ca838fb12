// A job of many items spread over every server offering a function (labc.map).
import type { OptionNames } from "../check-options.js";
import { CancelledError, ConnectionLostError, ItemLostError, LabcError, MapError } from "../errors.js";
import type { PoolServer } from "../pool/function-pool.js";

export interface MapOptions {
  /** Calls in flight at once, over all servers (default: `perServer` for every server). */
  concurrency?: number;
  /** Calls in flight at once on one server (default 2). */
  perServer?: number;
  /** Milliseconds each call may take; default `call.timeout` of the config. */
  timeoutMs?: number;
  /** Aborting it stops the job: the items not started fail with CancelledError. */
  signal?: AbortSignal;
}

export const MAP_OPTIONS = { concurrency: true, perServer: true, timeoutMs: true, signal: true } as const satisfies OptionNames<MapOptions>;

/** One item's outcome, as `labc.map()` yields it when the item is done. */
export interface MapResult<T = unknown> {
  /** The item's place in the input. */
  index: number;
  item: unknown;
  /** The result, when `ok`. */
  value?: T;
  /** Why the item failed, when not `ok`. */
  error?: LabcError;
  ok: boolean;
  /** The server that answered, or that the last attempt went to, as `host pid`. */
  server: string;
  /** How many servers it was sent to: more than 1 only for an idempotent function whose server was lost. */
  attempts: number;
}

/** What the job needs of the runtime: who offers the function, and how to call one of them. */
export interface MapTransport {
  /** The servers offering the function now (the pool changes while the job runs). */
  servers(): PoolServer[];
  /** The error of items left when no server offers the function. */
  missing(): LabcError;
  call(server: PoolServer, item: unknown, timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<unknown>;
  /** Whether the function may run twice for one item (registered `idempotent: true`) on that server; asked as each call starts. */
  idempotent(server: PoolServer): boolean;
  /** Whether a call that failed had left for its server (else it may go to another at once). */
  sent(error: unknown): boolean;
}

/** Attempts per item at most: a job never loops over servers that keep dying. */
const MAX_ATTEMPTS = 3;

/**
 * Calls of one function over many items, spread over every server offering it: each free slot
 * goes to the server with the fewest calls in flight (under `perServer`), so a slow server gets
 * fewer items. Await it for the results in input order (or a MapError accounting for every
 * item); iterate it with `for await` for each item's outcome as it completes.
 */
export class JobMap<T = unknown> implements PromiseLike<T[]>, AsyncIterable<MapResult<T>> {
  readonly total: number;
  done = 0;
  failed = 0;
  private readonly results: MapResult<T>[];
  private readonly queue: number[];
  private readonly attempts: number[];
  // Both by server id, not by the pool's object: a caller that joins its router again (after the
  // router restarted) gets new objects for the same servers.
  /** Calls in flight on each server. */
  private readonly inFlight = new Map<string, number>();
  /** Servers lost during the job: nothing more goes to them, even before the pool drops them. */
  private readonly lost = new Set<string>();
  private running = 0;
  private readonly completed: MapResult<T>[] = [];
  private readonly waiting: ((result: IteratorResult<MapResult<T>>) => void)[] = [];
  private readonly finished: Promise<T[]>;
  private finish!: (results: T[]) => void;
  private fail!: (error: Error) => void;

  constructor(
    private readonly name: string,
    private readonly items: unknown[],
    private readonly options: MapOptions,
    private readonly transport: MapTransport,
    ready: Promise<void>,
  ) {
    this.total = items.length;
    this.results = new Array(items.length);
    this.queue = items.map((_, index) => index);
    this.attempts = items.map(() => 0);
    this.finished = new Promise<T[]>((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
    // Unobserved when the job is only iterated: its failure is told there.
    this.finished.catch(() => {});
    options.signal?.addEventListener("abort", () => this.pump(), { once: true });
    ready.then(
      () => (this.total === 0 ? this.finish([]) : this.pump()),
      (error) => this.abandon(error),
    );
  }

  then<A = T[], B = never>(onDone?: ((results: T[]) => A | PromiseLike<A>) | null, onFailed?: ((error: any) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.finished.then(onDone, onFailed);
  }

  catch<B = never>(onFailed?: ((error: any) => B | PromiseLike<B>) | null): Promise<T[] | B> {
    return this.finished.catch(onFailed);
  }

  finally(onSettled?: (() => void) | null): Promise<T[]> {
    return this.finished.finally(onSettled);
  }

  [Symbol.asyncIterator](): AsyncIterator<MapResult<T>> {
    let read = 0;
    return {
      next: () => {
        if (read < this.completed.length) return Promise.resolve({ value: this.completed[read++]!, done: false });
        if (read === this.total) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiting.push(() => resolve({ value: this.completed[read++]!, done: false })));
      },
    };
  }

  /** Starts as many calls as the free slots allow. */
  private pump(): void {
    if (this.options.signal?.aborted) {
      const error = new CancelledError(this.name, this.options.signal.reason);
      for (const index of this.queue.splice(0)) this.settle(index, "", { error });
      return;
    }
    const perServer = this.options.perServer ?? 2;
    while (this.queue.length) {
      const servers = this.transport.servers().filter((server) => !this.lost.has(server.id));
      if (servers.length === 0) {
        if (this.running > 0) return; // a server may come back, or the calls in flight end it
        const error = this.transport.missing();
        for (const index of this.queue.splice(0)) this.settle(index, "", { error });
        return;
      }
      const limit = this.options.concurrency ?? perServer * servers.length;
      if (this.running >= limit) return;
      let best: PoolServer | undefined;
      let fewest = perServer;
      for (const server of servers) {
        const busy = this.inFlight.get(server.id) ?? 0;
        if (busy < fewest || (busy === fewest && best?.suspect && !server.suspect)) {
          best = server;
          fewest = busy;
        }
      }
      if (!best) return;
      this.start(this.queue.shift()!, best);
    }
  }

  private start(index: number, server: PoolServer): void {
    this.running++;
    this.attempts[index]!++;
    this.inFlight.set(server.id, (this.inFlight.get(server.id) ?? 0) + 1);
    const where = `${server.host} pid ${server.pid}`;
    // Asked now: a death notice that comes before the connection's close empties the pool's
    // entry for the server, and its calls then fail as if it offered nothing.
    const idempotent = this.transport.idempotent(server);
    this.transport.call(server, this.items[index], this.options.timeoutMs, this.options.signal).then(
      (value) => this.ended(index, server, where, { value: value as T }),
      (error: unknown) => {
        const sent = this.transport.sent(error);
        const lost = !sent || error instanceof ConnectionLostError;
        if (lost) this.lost.add(server.id);
        if (lost && this.attempts[index]! < MAX_ATTEMPTS && (!sent || idempotent)) {
          // The server went away with it: another one does it (it may have run there, which an
          // idempotent function allows; one not sent at all may go anywhere).
          this.queue.unshift(index);
          return this.ended(index, server, where, undefined);
        }
        if (lost && sent && !idempotent) error = new ItemLostError(this.name, index, where, error);
        this.ended(index, server, where, { error: error as LabcError });
      },
    );
  }

  private ended(index: number, server: PoolServer, where: string, outcome: { value?: T; error?: LabcError } | undefined): void {
    this.running--;
    const busy = this.inFlight.get(server.id)! - 1;
    if (busy > 0) this.inFlight.set(server.id, busy);
    else this.inFlight.delete(server.id);
    if (outcome) this.settle(index, where, outcome);
    this.pump();
  }

  private settle(index: number, server: string, outcome: { value?: T; error?: LabcError }): void {
    const ok = outcome.error === undefined;
    const result: MapResult<T> = { index, item: this.items[index], ok, server, attempts: this.attempts[index]!, ...outcome };
    this.results[index] = result;
    this.done++;
    if (!ok) this.failed++;
    this.completed.push(result);
    // Every iterator waiting reads its next outcome: this one.
    for (const wake of this.waiting.splice(0)) wake({ value: result, done: false });
    if (this.done < this.total) return;
    if (this.failed) this.fail(new MapError(this.name, this.results));
    else this.finish(this.results.map((each) => each.value as T));
  }

  private abandon(error: LabcError): void {
    for (const index of this.queue.splice(0)) this.settle(index, "", { error });
  }
}
