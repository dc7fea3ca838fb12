import { nowMs } from "../clock.js";
import { BadMessageError, CancelledError, ConnectionLostError, TimeoutError } from "../errors.js";
import type { CallStats } from "../metrics.js";
import { encodeMessage } from "../wire/codec.js";
import { errorFromPayload } from "../wire/error-payload.js";
import { Kind, KIND_NAMES, type ExcBody, type Message, type RepBody } from "../wire/message.js";
import type { Frame } from "./outbox.js";
import { requestExpiry, type Expiring } from "./request-expiry.js";

/**
 * Where a request relayed unread reports (a router passing a caller's request on): the frames
 * that answer it, as they came, or why it failed. An object rather than a promise: a router
 * relays each call, and a promise, its callbacks and a microtask each time cost it about 13 % of
 * its CPU per relayed call.
 */
export interface RelayReceiver {
  /** The request asked for a stream: its items are passed on (else they are dropped). */
  readonly streamed: boolean;
  item(frame: Buffer): void;
  answered(frame: Buffer): void;
  failed(error: Error): void;
}

/** One request of ours, waiting for its answer. */
export interface Pending {
  /** The promise's, for a request of this process (none for a relayed one). */
  resolve: ((value: any) => void) | undefined;
  reject: ((error: Error) => void) | undefined;
  what: string;
  timeoutMs: number;
  /** When it times out (`nowMs()`), or Infinity. */
  expiresAt: number;
  /** A request relayed unread: its answer goes here as the frame that came. */
  relay: RelayReceiver | undefined;
  /** The caller's signal, and what listens to it, while the request waits. */
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** A stream's items as they arrive; the answer that ends it then settles with its whole body. */
  onItem: ((item: any) => void) | undefined;
  /** Where a call of a function counts (the process's metrics), and when it started (0: not timed). */
  stats: CallStats | undefined;
  startedAt: number;
}

/** What the table needs of the connection its requests travel on. */
export interface RequestLink {
  /** Who is on the other side, as errors name it. */
  label(): string;
  closed(): boolean;
  /** Writes a frame of ours; `waitedFor`: a request (see Transport.write). */
  write(frame: Frame, waitedFor?: boolean): void;
  /** Keep the process alive (something waits on this link), or no longer. */
  ref(): void;
  unref(): void;
}

/**
 * Our requests on one connection, by id (nats.js keeps its own in `request.ts`): each settles
 * with its answer, or with TimeoutError when its deadline passes (the process's one expiry
 * timer asks), CancelledError when its caller gives it up, ConnectionLostError when the
 * connection closes; the peer is told of a timeout or a cancel. A stream's request grants the
 * peer credit for more items.
 */
export class Requests implements Expiring {
  nextExpiry = Infinity;
  /** The id the next request takes: its frame is encoded with it before `start`. */
  nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Waits (besides requests) that keep the link referenced. */
  private holds = 0;

  /**
   * `refWhilePending`: the link keeps the process alive only while a request (or a `hold`) waits
   * on it, so that a script that made its calls can exit without closing anything.
   */
  constructor(
    private readonly link: RequestLink,
    private readonly refWhilePending: boolean,
  ) {
    if (refWhilePending) link.unref();
  }

  get size(): number {
    return this.pending.size;
  }

  get(id: number): Pending | undefined {
    return this.pending.get(id);
  }

  /** Sends `frame` (which carries `nextId` already) and waits for its answer. */
  start(
    frame: Frame,
    what: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    onItem?: (item: any) => void,
    stats?: CallStats,
  ): { id: number; answer: Promise<any> } {
    const id = this.nextId;
    if (this.link.closed()) return { id, answer: Promise.reject(new ConnectionLostError(this.link.label(), what)) };
    if (signal?.aborted) return { id, answer: Promise.reject(new CancelledError(what, signal.reason)) };
    const answer = new Promise((resolve, reject) => this.open(frame, what, timeoutMs, stats, resolve, reject, undefined, onItem, signal));
    return { id, answer };
  }

  /**
   * Sends `frame` (which carries `nextId` already), a request relayed unread: its answer, and a
   * stream's items, go to `receiver` as the frames that came. Returns the request's id.
   */
  relay(frame: Frame, what: string, timeoutMs: number, receiver: RelayReceiver): number {
    const id = this.nextId;
    if (this.link.closed()) receiver.failed(new ConnectionLostError(this.link.label(), what));
    else this.open(frame, what, timeoutMs, undefined, undefined, undefined, receiver, undefined, undefined);
    return id;
  }

  /**
   * Takes the next id for a request and sends its frame, listening to the caller's `signal`
   * first: the write may close the connection (a peer that reads nothing), which settles the
   * request at once, and only a listener already there is then removed (`settle`).
   */
  private open(
    frame: Frame,
    what: string,
    timeoutMs: number,
    stats: CallStats | undefined,
    resolve: Pending["resolve"],
    reject: Pending["reject"],
    relay: RelayReceiver | undefined,
    onItem: Pending["onItem"],
    signal: AbortSignal | undefined,
  ): void {
    const id = this.nextId;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    const now = nowMs();
    const startedAt = stats ? stats.begin(now) : 0;
    const expiresAt = timeoutMs > 0 ? now + timeoutMs : Infinity;
    if (expiresAt < this.nextExpiry) {
      this.nextExpiry = expiresAt;
      requestExpiry.watch(this);
    }
    const entry: Pending = { resolve, reject, what, timeoutMs, expiresAt, relay, signal, onAbort: undefined, onItem, stats, startedAt };
    if (signal) {
      entry.onAbort = () => this.cancel(id, signal.reason);
      signal.addEventListener("abort", entry.onAbort, { once: true });
    }
    if (this.pending.size === 0 && this.refWhilePending) this.link.ref();
    this.pending.set(id, entry);
    this.link.write(frame, true);
  }

  /**
   * Keeps the process alive until `until` settles, as a waiting request does: for a message
   * awaited that is not an answer (the pool that follows a router's welcome, which may arrive
   * in a later read).
   */
  hold(until: Promise<unknown>): void {
    if (!this.refWhilePending) return;
    this.holds++;
    this.link.ref();
    const release = () => {
      this.holds--;
      this.released();
    };
    until.then(release, release);
  }

  /** Lets the peer send `n` more items of the stream answering our request `id`. */
  grant(id: number, n: number): void {
    if (!this.link.closed() && this.pending.has(id)) this.link.write(encodeMessage(Kind.credit, id, { n }));
  }

  /** Gives up a request of ours: it rejects with CancelledError and the peer is told. */
  cancel(id: number, reason?: unknown): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.reject(id, entry, new CancelledError(entry.what, reason));
    if (!this.link.closed()) this.link.write(encodeMessage(Kind.cancel, id, {}));
  }

  expire(now: number): void {
    let next = Infinity;
    for (const [id, entry] of this.pending) {
      if (entry.expiresAt > now) {
        next = Math.min(next, entry.expiresAt);
        continue;
      }
      this.reject(id, entry, new TimeoutError(entry.what, entry.timeoutMs, this.link.label()));
      // The server need not finish what nobody waits for.
      if (!this.link.closed()) this.link.write(encodeMessage(Kind.cancel, id, {}));
    }
    this.nextExpiry = next;
  }

  /**
   * A frame that answers a request relayed unread, or one of its stream's items: passed on as it
   * came. False when it is for no such request (it is then read as any other).
   */
  answerUnread(kind: number, frame: Buffer): boolean {
    const id = frame.readUInt32BE(4);
    const entry = this.pending.get(id);
    const relay = entry?.relay;
    if (!relay) return false;
    if (kind === Kind.item) this.item(entry!, frame);
    else this.resolve(id, entry!, frame);
    return true;
  }

  /** A `rep`, `exc`, `pong` or `item` for a request of ours (none: it timed out, nobody waits for it). */
  answer(message: Message): void {
    const entry = this.pending.get(message.id);
    if (!entry) return;
    // Answers and items of a relayed request were passed on unread (`answerUnread`): what comes
    // here for one is a pong, which its caller would take for an answer.
    if (entry.relay) return this.reject(message.id, entry, new BadMessageError(KIND_NAMES[message.kind] ?? String(message.kind), `answers request ${message.id}, which was not a ping`));
    if (message.kind === Kind.item) return this.item(entry, (message.body as RepBody).v);
    if (message.kind === Kind.exc) return this.reject(message.id, entry, errorFromPayload(message.body as ExcBody, entry.what, this.link.label()));
    this.resolve(message.id, entry, message.kind === Kind.pong ? undefined : entry.onItem ? message.body : (message.body as RepBody).v);
  }

  /** An item of the stream answering a request of ours: once items flow, the request no longer times out. */
  item(entry: Pending, item: unknown): void {
    const { relay } = entry;
    // Items of a request that did not ask for a stream are dropped.
    if (relay ? !relay.streamed : !entry.onItem) return;
    entry.expiresAt = Infinity;
    if (relay) relay.item(item as Buffer);
    else entry.onItem!(item);
  }

  /** The request is answered with `value`. */
  resolve(id: number, entry: Pending, value: unknown): void {
    this.settle(id, entry);
    entry.stats?.end(entry.startedAt);
    if (entry.relay) entry.relay.answered(value as Buffer);
    else entry.resolve!(value);
  }

  reject(id: number, entry: Pending, error: Error): void {
    this.settle(id, entry);
    entry.stats?.end(entry.startedAt, error);
    if (entry.relay) entry.relay.failed(error);
    else entry.reject!(error);
  }

  /** The connection closed: every request fails with the error `lost` makes for it. */
  failAll(lost: (entry: Pending) => Error): void {
    for (const [id, entry] of this.pending) this.reject(id, entry, lost(entry));
    this.nextExpiry = Infinity;
  }

  /** Takes an answered request out of the waiting ones. */
  private settle(id: number, entry: Pending): void {
    this.pending.delete(id);
    if (entry.onAbort) entry.signal!.removeEventListener("abort", entry.onAbort);
    this.released();
  }

  private released(): void {
    if (this.pending.size === 0 && this.holds === 0 && this.refWhilePending && !this.link.closed()) this.link.unref();
  }
}
