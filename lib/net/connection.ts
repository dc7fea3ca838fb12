import {
  BadArgumentsError,
  BadMessageError,
  CancelledError,
  ClosedError,
  ConnectionLostError,
  errorFromPayload,
  errorToPayload,
  LabcError,
  LimitError,
  TimeoutError,
} from "../errors.js";
import { debug, debugging, warn } from "../log.js";
import { decodeMessage, encodeItem, encodeMessage, encodeReply, encodeRequest, reframe } from "../wire/codec.js";
import type { ItemStream, StreamSource } from "./item-stream.js";
import type { StreamOutlet } from "./stream-pump.js";
import { FrameDecoder } from "../wire/frame-decoder.js";
import type { CallStats, Metered, Metrics } from "../metrics.js";
import { Kind, KIND_NAMES, type CreditBody, type ExcBody, type HelloBody, type Message, type RepBody } from "../wire/message.js";
import { problemWith } from "../wire/validate.js";
import { fromOwnHost } from "../trust/own-address.js";
import { deadlines, type Deadline } from "./deadline-wheel.js";
import type { Limits } from "./limits.js";
import { requestExpiry, type Expiring } from "./request-expiry.js";
import { IGNORABLE_ERRORS, type Transport } from "./transport.js";
import { tripped } from "./trips.js";

interface Pending {
  resolve: (value: any) => void;
  reject: (error: Error) => void;
  what: string;
  timeoutMs: number;
  /** When it times out (performance.now() ms), or Infinity. */
  expiresAt: number;
  /** Settle with the answering message itself, unread (a router relaying it). */
  raw: boolean;
  /** The caller's signal, and what listens to it, while the request waits. */
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** A stream's items as they arrive (their frames, unread, when `raw`); the answer that ends
   * it then settles with its whole body. */
  onItem: ((item: any) => void) | undefined;
  /** Where a call of a function counts (the process's metrics), and when it started (0: not timed). */
  stats: CallStats | undefined;
  startedAt: number;
}

/** An incoming request being served: the peer may cancel it, or grant a stream more credit. */
export interface Cancellable {
  cancel(reason?: unknown): void;
  credit?(n: number): void;
}

/** Stands for an incoming request until its server says how to cancel it. */
const UNCANCELLABLE: Cancellable = { cancel() {} };

/** Kinds whose sender waits for an answer (when the id is not 0): a bad one is answered. */
const ANSWERED: ReadonlySet<number> = new Set([Kind.hello, Kind.req, Kind.announce, Kind.withdraw, Kind.ping, Kind.death]);

export interface ConnectionOptions {
  /** Who is on the other side, as errors should name it ("server 1a2b at 127.0.0.1:4000"). */
  label: string;
  limits: Limits;
  /** Every message that is not the answer to one of our requests. */
  onMessage?: (message: Message, connection: Connection) => void;
  onClose?: (connection: Connection, error?: Error) => void;
  /** Bytes arrived from the peer: it is alive (heartbeats count on this). */
  onReceive?: () => void;
  /** Outgoing links keep the process alive only while a request waits on them, so a script
   * that made its calls can exit without closing anything. */
  refWhilePending?: boolean;
  /** Send our stack with the errors we report to this peer. */
  sendStacks?: boolean;
  /**
   * The peer dialed us: it must say hello first, and soon, and it is not read while it has too
   * many requests waiting or leaves too much unread. Only the accepting side ever stops reading,
   * so two peers can never both wait for the other to read.
   */
  accepted?: boolean;
  /** Where this connection's traffic and the calls made over it count (off when absent). */
  metrics?: Metrics;
}

/**
 * One persistent link to a peer, carrying any number of concurrent requests, each matched to
 * its answer by id. Frames are decoded and every body validated here, answers settled here,
 * cancellations matched here, and everything else is handed to `onMessage`. The limits of
 * `options.limits` that concern one connection are enforced here too.
 */
export class Connection implements Expiring, Metered {
  /** What crossed this connection, for `labc metrics`. */
  readonly traffic = { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0, readPauses: 0, writeWaits: 0 };
  /** The peer's hello, once it arrived. */
  peer: HelloBody | undefined;
  closed = false;
  nextExpiry = Infinity;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Requests from the peer being served, by id; `anonymous` counts those sent with id 0. */
  private readonly incoming = new Map<number, Cancellable>();
  private anonymous = 0;
  private idleWaiters: (() => void)[] = [];
  /** Waits (besides requests) that keep a `refWhilePending` link referenced. */
  private holds = 0;
  private readonly decoder: FrameDecoder;
  private paused = false;
  private frameDeadline: Deadline | null = null;
  /** The frame being read had its clock started again once (see frameTimedOut). */
  private frameExtended = false;
  private helloDeadline: Deadline | null = null;
  private drainWaiters: (() => void)[] = [];
  private readonly onFrame = (frame: Buffer) => this.frameIn(frame);
  private own: boolean | undefined;

  constructor(readonly transport: Transport, private readonly options: ConnectionOptions) {
    this.decoder = new FrameDecoder(options.limits.maxFrameBytes, options.limits.partialFrames, transport.lendsChunks);
    options.metrics?.connections.add(this);
    if (options.refWhilePending) transport.unref();
    if (options.accepted) {
      this.helloDeadline = deadlines.add(options.limits.helloTimeoutMs, () => {
        this.helloDeadline = null;
        afterWaitingReads(() => {
          if (!this.peer) this.fail(new LimitError("hello_timeout", `no hello within ${options.limits.helloTimeoutMs} ms`));
        });
      });
    }
    transport.start(
      (chunk) => this.receive(chunk),
      (error) => this.closedBy(error),
      () => this.drained(),
    );
  }

  get label(): string {
    return this.options.label;
  }

  set label(label: string) {
    this.options.label = label;
  }

  /** Whether the peer is a process of this host, by the address it connects from (not its hello). */
  get fromOwnHost(): boolean {
    return (this.own ??= fromOwnHost(this.transport.remote));
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Requests from the peer not answered yet. */
  get servingCount(): number {
    return this.incoming.size + this.anonymous;
  }

  /** More is queued for the peer than it reads: a sender should wait for `drain()`. */
  get congested(): boolean {
    return this.transport.queuedBytes >= this.options.limits.maxUnsentBytes;
  }

  /** Resolves once what is queued for the peer is under `maxUnsentBytes` again (or it closed). */
  drain(): Promise<void> {
    if (!this.congested || this.closed) return Promise.resolve();
    this.traffic.writeWaits++;
    return new Promise((done) => this.drainWaiters.push(done));
  }

  /** Resolves once every request from the peer has been answered. */
  served(): Promise<void> {
    if (this.servingCount === 0 || this.closed) return Promise.resolve();
    return new Promise((done) => this.idleWaiters.push(done));
  }

  /**
   * Keeps the process alive until `until` settles, as a pending request does: for a message
   * awaited that is not an answer (the pool that follows a router's welcome, which may arrive
   * in a later read).
   */
  holdUntil(until: Promise<unknown>): void {
    if (!this.options.refWhilePending) return;
    this.holds++;
    this.transport.ref();
    const release = () => {
      this.holds--;
      this.released();
    };
    until.then(release, release);
  }

  /** Sends a message that expects no answer. Throws BadArgumentsError if it cannot be encoded. */
  send(kind: Kind, body: object, id = 0): void {
    if (this.closed) throw new ClosedError(`connection to ${this.options.label}`);
    this.write(encodeMessage(kind, id, body, this.options.limits));
  }

  /** Sends a frame encoded once for many recipients (pool notices; publications go by `publish`). */
  sendEncoded(frame: Buffer | Buffer[]): void {
    if (!this.closed) this.write(frame);
  }

  /**
   * Sends a message and settles with the `rep` value or the `exc` error that answers it.
   * `what` names the request in errors (the function called, or "hello", "announce"...).
   * A timeout, or `signal` firing, also tells the peer that the request is cancelled.
   */
  request(kind: Kind, body: object, what: string, timeoutMs: number, signal?: AbortSignal): Promise<any> {
    let frame: Buffer | Buffer[];
    try {
      frame = encodeMessage(kind, this.nextId, body, this.options.limits);
    } catch (error) {
      if (error instanceof BadArgumentsError) return Promise.reject(new BadArgumentsError(`${what}: ${error.message}`));
      return Promise.reject(error);
    }
    return this.start(frame, what, timeoutMs, false, signal).answer;
  }

  /**
   * Calls function `fn` of the peer: `request` for a `req`, its body written straight as text
   * (with a `trace` only when hooks give one). `flags` go in the frame's header (FLAG_FAR).
   */
  call(fn: string, args: unknown[], timeoutMs: number, signal?: AbortSignal, trace?: string, flags = 0): Promise<any> {
    let frame: Buffer | Buffer[];
    try {
      const ms = timeoutMs > 0 && Number.isFinite(timeoutMs) ? timeoutMs : undefined;
      frame = encodeRequest(this.nextId, fn, args, ms, this.options.limits, trace);
      // The header's flags byte, after the length prefix and the kind (docs/protocol.md).
      if (flags !== 0) (Array.isArray(frame) ? frame[0]! : frame)[5]! |= flags;
    } catch (error) {
      return Promise.reject(error instanceof BadArgumentsError ? new BadArgumentsError(`${fn}: ${error.message}`) : error);
    }
    return this.start(frame, fn, timeoutMs, false, signal, undefined, this.options.metrics?.calledStats(fn)).answer;
  }

  /**
   * Passes a request received elsewhere on as it came (its frame, under a new id) and settles
   * with the answer's frame, unread, for `replyWith`: a router relays without decoding the
   * answer or encoding anything again. Timeouts and loss still reject with a LabcError; `cancel`
   * with the id returned gives the request up.
   */
  relay(request: Message, what: string, timeoutMs: number, onItem?: (frame: Buffer) => void): { id: number; answer: Promise<Buffer> } {
    return this.start(reframe(request.frame!, this.nextId), what, timeoutMs, true, undefined, onItem);
  }

  /**
   * Calls `fn` of the peer as a stream: its items go to `stream` as they arrive, `window` of them
   * at most ahead of its reader, and the answer ends it. `extra` adds to the request's body
   * (`target`, through a router). The timeout covers the wait for the first item or the answer.
   */
  openStream(fn: string, args: unknown[], extra: object, timeoutMs: number, signal: AbortSignal | undefined, stream: ItemStream<any>): StreamSource {
    let frame: Buffer | Buffer[];
    try {
      frame = encodeMessage(Kind.req, this.nextId, { fn, args, ...extra, credit: stream.window }, this.options.limits);
    } catch (error) {
      throw error instanceof BadArgumentsError ? new BadArgumentsError(`${fn}: ${error.message}`) : error;
    }
    const { id, answer } = this.start(frame, fn, timeoutMs, false, signal, (value) => stream.push(value));
    answer.then((body: RepBody) => stream.end(body), (error) => stream.fail(error));
    return { grant: (n) => this.grant(id, n), cancel: () => this.cancel(id) };
  }

  /** Lets the peer send `n` more items of the stream answering our request `id`. */
  grant(id: number, n: number): void {
    if (!this.closed && this.pending.has(id)) this.write(encodeMessage(Kind.credit, id, { n }));
  }

  /** Where a stream answering the peer's request `id` sends its items and its end. */
  outlet(id: number): StreamOutlet {
    const connection = this;
    return {
      item: (value) => this.write(encodeItem(id, value, this.options.limits)),
      end: () => {
        if (this.closed) return;
        this.write(encodeMessage(Kind.rep, id, { done: true }));
        this.answered(id);
      },
      fail: (error) => this.replyError(id, error),
      get congested() {
        return connection.congested;
      },
      drain: () => this.drain(),
      get closed() {
        return connection.closed;
      },
    };
  }

  /** Passes on an item of a stream relayed from elsewhere (its frame), under our request id. */
  passItem(id: number, item: Buffer): void {
    if (!this.closed && this.incoming.has(id)) this.write(reframe(item, id));
  }

  /** Gives up a request of ours: it rejects with CancelledError and the peer is told. */
  cancel(id: number, reason?: unknown): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.rejectEntry(id, entry, new CancelledError(entry.what, reason));
    if (!this.closed) this.write(encodeMessage(Kind.cancel, id, {}));
  }

  /** `frame` carries `this.nextId` already. */
  private start(
    frame: Buffer | Buffer[],
    what: string,
    timeoutMs: number,
    raw: boolean,
    signal: AbortSignal | undefined,
    onItem?: (item: any) => void,
    stats?: CallStats,
  ): { id: number; answer: Promise<any> } {
    const id = this.nextId;
    if (this.closed) return { id, answer: Promise.reject(new ConnectionLostError(this.options.label, what)) };
    if (signal?.aborted) return { id, answer: Promise.reject(new CancelledError(what, signal.reason)) };
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    const now = performance.now();
    const startedAt = stats ? stats.begin(now) : 0;
    const expiresAt = timeoutMs > 0 ? now + timeoutMs : Infinity;
    if (expiresAt < this.nextExpiry) {
      this.nextExpiry = expiresAt;
      requestExpiry.watch(this);
    }
    const answer = new Promise((resolve, reject) => {
      const entry: Pending = { resolve, reject, what, timeoutMs, expiresAt, raw, signal, onAbort: undefined, onItem, stats, startedAt };
      if (signal) {
        entry.onAbort = () => this.cancel(id, signal.reason);
        signal.addEventListener("abort", entry.onAbort, { once: true });
      }
      if (this.pending.size === 0 && this.options.refWhilePending) this.transport.ref();
      this.pending.set(id, entry);
      this.write(frame, true);
    });
    return { id, answer };
  }

  expire(now: number): void {
    let next = Infinity;
    for (const [id, entry] of this.pending) {
      if (entry.expiresAt > now) {
        next = Math.min(next, entry.expiresAt);
        continue;
      }
      this.rejectEntry(id, entry, new TimeoutError(entry.what, entry.timeoutMs, this.options.label));
      // The server need not finish what nobody waits for.
      if (!this.closed) this.write(encodeMessage(Kind.cancel, id, {}));
    }
    this.nextExpiry = next;
  }

  /** The server serving request `id` of the peer says how to cancel it. */
  track(id: number, call: Cancellable): void {
    if (this.incoming.has(id)) this.incoming.set(id, call);
  }

  reply(id: number, value: unknown): void {
    if (this.closed) return;
    try {
      this.write(encodeReply(id, value, this.options.limits), true);
    } catch (error) {
      return this.replyError(id, error);
    }
    this.answered(id);
  }

  /** Passes on an answer relayed from elsewhere (its frame), under this connection's request id. */
  replyWith(id: number, answer: Buffer): void {
    if (this.closed) return;
    this.write(reframe(answer, id), true);
    this.answered(id);
  }

  /** Passes on a publication received elsewhere, as it came; false when not sent (`publish`). */
  forward(message: Message): boolean {
    return this.publish(reframe(message.frame!, 0));
  }

  /**
   * Queues a publication, encoded once for every subscriber, unless the peer already leaves so
   * much unread that it would pass `maxQueuedBytes`: then this one is not sent (false), which
   * is logged as a `queued` trip, and the connection stays with all it holds. A publisher that
   * awaits is slowed long before that (`congested`); one that does not await costs the slow
   * subscriber what it has no room for, said in the log, rather than costing the publisher
   * its memory or the subscriber everything queued for it.
   */
  publish(frame: Buffer | Buffer[]): boolean {
    if (this.closed) return false;
    const queued = this.transport.queuedBytes;
    if (queued + (Array.isArray(frame) ? byteLength(frame) : frame.length) > this.options.limits.maxQueuedBytes) {
      tripped("queued", this.transport.remote, `${queued} bytes queued that it does not read: a publication was not sent to ${this.options.label}; await publish() to be slowed down instead`);
      return false;
    }
    this.write(frame);
    return true;
  }

  replyError(id: number, error: unknown): void {
    if (this.closed) return;
    this.writeError(id, error);
    this.answered(id);
  }

  private writeError(id: number, error: unknown): void {
    const body = errorToPayload(error, this.options.sendStacks === true);
    let frame: Buffer | Buffer[];
    try {
      frame = encodeMessage(Kind.exc, id, body, this.options.limits);
    } catch (problem) {
      // A field that cannot travel (a function...) must not cost the caller its answer.
      const { data, cause, ...rest } = body;
      frame = encodeMessage(Kind.exc, id, { ...rest, message: `${rest.message} (its fields were not sent: ${(problem as Error).message})` }, this.options.limits);
    }
    this.write(frame, true);
  }

  /** Closes after what was written; resolves once it left (see Transport.close). */
  close(graceMs?: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    const flushed = this.transport.close(graceMs);
    this.closedBy(undefined);
    return flushed;
  }

  /** `waitedFor`: a request or an answer (see Transport.write). */
  private write(frame: Buffer | Buffer[], waitedFor = false): void {
    this.traffic.framesOut++;
    if (Buffer.isBuffer(frame)) this.traffic.bytesOut += frame.length;
    else for (const part of frame) this.traffic.bytesOut += part.length;
    this.transport.write(frame, waitedFor);
    if (this.transport.queuedBytes > this.options.limits.maxQueuedBytes) {
      this.fail(new LimitError("queued", `over ${this.options.limits.maxQueuedBytes} bytes queued that the peer does not read`));
    }
  }

  /** A request of the peer was answered. */
  private answered(id: number): void {
    if (!(id === 0 ? this.anonymous > 0 && this.anonymous-- : this.incoming.delete(id))) return;
    if (this.paused) this.flow();
    if (this.idleWaiters.length && this.servingCount === 0) for (const done of this.idleWaiters.splice(0)) done();
  }

  private receive(chunk: Buffer): void {
    this.traffic.bytesIn += chunk.length;
    this.options.onReceive?.();
    try {
      this.decoder.push(chunk, this.onFrame);
    } catch (error) {
      // The stream is no longer aligned on frames: this link is done, the others are not.
      return this.fail(error as LabcError);
    }
    if (this.decoder.idle) {
      if (this.frameDeadline) this.stopFrameClock();
      this.frameExtended = false;
    } else if (!this.frameDeadline && !this.paused && !this.closed) {
      this.frameDeadline = deadlines.add(this.options.limits.frameTimeoutMs, this.frameTimedOut);
    }
  }

  private readonly frameTimedOut = () => {
    this.frameDeadline = null;
    const bytesIn = this.traffic.bytesIn;
    afterWaitingReads(() => {
      if (this.closed || this.paused || this.decoder.idle || this.frameDeadline) return;
      // Bytes of it were waiting to be read (this process was the slow one): its clock starts
      // again, once per frame, so that a peer trickling bytes still cannot hold it open.
      if (this.traffic.bytesIn > bytesIn && !this.frameExtended) {
        this.frameExtended = true;
        this.frameDeadline = deadlines.add(this.options.limits.frameTimeoutMs, this.frameTimedOut);
        return;
      }
      this.fail(new LimitError("frame_timeout", `a frame still incomplete ${this.options.limits.frameTimeoutMs} ms after its first byte`));
    });
  };

  private stopFrameClock(): void {
    if (this.frameDeadline) deadlines.cancel(this.frameDeadline);
    this.frameDeadline = null;
  }

  private frameIn(frame: Buffer): void {
    if (this.closed) return;
    this.traffic.framesIn++;
    const kind = frame[0];
    if (kind === Kind.rep || kind === Kind.exc || kind === Kind.item) {
      // An answer, or a stream's item, being relayed is passed on unread.
      const id = frame.readUInt32BE(4);
      const entry = this.pending.get(id);
      if (entry?.raw) {
        if (kind === Kind.item) return this.itemFor(entry, frame);
        this.settle(id, entry);
        return entry.resolve(frame);
      }
    }
    this.dispatch(decodeMessage(frame));
  }

  /** An item of the stream answering a request of ours: once items flow, the request no longer times out. */
  private itemFor(entry: Pending, item: unknown): void {
    if (!entry.onItem) return;
    entry.expiresAt = Infinity;
    entry.onItem(item);
  }

  private rejectEntry(id: number, entry: Pending, error: Error): void {
    this.settle(id, entry);
    entry.stats?.end(entry.startedAt, error);
    entry.reject(error);
  }

  /** Takes an answered request out of the waiting ones; the caller then resolves or rejects it. */
  private settle(id: number, entry: Pending): void {
    this.pending.delete(id);
    if (entry.onAbort) entry.signal!.removeEventListener("abort", entry.onAbort);
    this.released();
  }

  private dispatch(message: Message): void {
    if (debugging) debug("%s %s #%d", this.options.label, KIND_NAMES[message.kind], message.id);
    const problem = problemWith(message.kind, message.body);
    if (problem) return this.refuse(message, problem);
    // An answer to a reused id would be taken for the answer to the request still served under it.
    if (message.id !== 0 && ANSWERED.has(message.kind) && this.incoming.has(message.id)) {
      return this.refuse(message, `request id ${message.id} is already in use`);
    }
    switch (message.kind) {
      case Kind.rep:
      case Kind.exc:
      case Kind.pong: {
        const entry = this.pending.get(message.id);
        if (!entry) return; // answer to a request that timed out: nobody waits for it
        if (message.kind === Kind.exc) return this.rejectEntry(message.id, entry, errorFromPayload(message.body as ExcBody, entry.what, this.options.label));
        this.settle(message.id, entry);
        entry.stats?.end(entry.startedAt);
        entry.resolve(message.kind === Kind.pong ? undefined : entry.onItem ? message.body : (message.body as RepBody).v);
        return;
      }
      case Kind.item: {
        const entry = this.pending.get(message.id);
        return entry && this.itemFor(entry, (message.body as RepBody).v);
      }
      case Kind.cancel:
        return this.incoming.get(message.id)?.cancel();
      case Kind.credit:
        return this.incoming.get(message.id)?.credit?.((message.body as CreditBody).n);
      case Kind.hello:
        this.peer = message.body;
        if (this.helloDeadline) deadlines.cancel(this.helloDeadline);
        this.helloDeadline = null;
        break;
      case Kind.req:
        if (message.id === 0) this.anonymous++;
        else this.incoming.set(message.id, UNCANCELLABLE);
    }
    if (this.options.accepted && !this.peer) return this.refuse(message, "the first message on a connection must be a hello");
    try {
      this.options.onMessage?.(message, this);
    } catch (error) {
      // A fault of ours in handling one message: the connection and its other messages go on.
      warn(`${KIND_NAMES[message.kind]} from ${this.options.label} failed`, error);
      if (message.id !== 0 && ANSWERED.has(message.kind)) this.replyError(message.id, error);
    }
    if (message.kind === Kind.req && this.options.accepted) this.flow();
  }

  /** A body that does not fit its kind: answered with an error when the peer waits for one,
   * else the connection is closed (docs/protocol.md). */
  private refuse(message: Message, problem: string): void {
    const error = new BadMessageError(KIND_NAMES[message.kind] ?? String(message.kind), problem);
    if (message.kind === Kind.rep || message.kind === Kind.exc) {
      const entry = this.pending.get(message.id);
      tripped("bad_message", this.transport.remote, error.message);
      if (entry) this.rejectEntry(message.id, entry, error);
      return;
    }
    if (message.id !== 0 && ANSWERED.has(message.kind) && (this.peer || !this.options.accepted)) {
      tripped("bad_message", this.transport.remote, error.message);
      // Not `replyError`: the id may be that of a request still being served.
      return this.writeError(message.id, error);
    }
    this.fail(error);
  }

  /**
   * Reading pauses while the peer has too many requests waiting or leaves too much unread,
   * and resumes when both are under their limits again.
   */
  private flow(): void {
    const { maxInFlight, maxUnsentBytes } = this.options.limits;
    const busy = this.servingCount >= maxInFlight;
    const full = this.transport.queuedBytes >= maxUnsentBytes;
    if (busy || full) {
      if (this.paused) return;
      this.paused = true;
      this.traffic.readPauses++;
      this.transport.pause();
      // Its own slowness: a frame arriving now must not time out while we do not read it.
      this.stopFrameClock();
      const why = busy ? `${this.servingCount} requests waiting for their answers` : `${this.transport.queuedBytes} bytes unread`;
      tripped(busy ? "in_flight" : "unsent", this.transport.remote, `${why}; not reading from it until that goes down`, true);
    } else if (this.paused) {
      this.paused = false;
      this.transport.resume();
      if (!this.decoder.idle) this.frameDeadline = deadlines.add(this.options.limits.frameTimeoutMs, this.frameTimedOut);
    }
  }

  private drained(): void {
    if (this.paused) this.flow();
    if (this.drainWaiters.length && !this.congested) for (const done of this.drainWaiters.splice(0)) done();
  }

  /** A limit tripped or the peer sent something unreadable: this connection ends, with why. */
  private fail(error: LabcError): void {
    if (this.closed) return;
    const limit =
      error instanceof LimitError ? error.limit : error.code === "LABC_BAD_MESSAGE" ? "bad_message" : error.code === "LABC_FRAME_TOO_LARGE" ? "max_frame_size" : "bad_frame";
    tripped(limit, this.transport.remote, `${error.message}; closed the connection (${this.options.label})`);
    void this.transport.close(0);
    this.closedBy(error);
  }

  private released(): void {
    if (this.pending.size === 0 && this.holds === 0 && this.options.refWhilePending && !this.closed) this.transport.unref();
  }

  private closedBy(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.options.metrics?.connections.delete(this);
    if (error && !IGNORABLE_ERRORS.has((error as NodeJS.ErrnoException).code ?? "")) {
      debug("%s closed: %s", this.options.label, error.message);
    }
    this.decoder.release();
    this.stopFrameClock();
    if (this.helloDeadline) deadlines.cancel(this.helloDeadline);
    this.helloDeadline = null;
    for (const [id, entry] of this.pending) {
      this.rejectEntry(id, entry, new ConnectionLostError(this.options.label, entry.what, error));
    }
    this.nextExpiry = Infinity;
    // Nobody is left to answer: the handlers still running may stop.
    for (const call of this.incoming.values()) call.cancel(new ConnectionLostError(this.options.label));
    this.incoming.clear();
    this.anonymous = 0;
    for (const done of this.idleWaiters.splice(0)) done();
    for (const done of this.drainWaiters.splice(0)) done();
    this.options.onClose?.(this, error);
  }
}

function byteLength(parts: Buffer[]): number {
  let total = 0;
  for (const part of parts) total += part.length;
  return total;
}

/**
 * Runs a timeout's verdict after the reads waiting in the kernel. After a stall of this process
 * (a machine too busy to run it for a while), Node runs due timers before it reads the sockets:
 * a hello or the rest of a frame that came meanwhile would count as missing. A check callback
 * runs after the reads of this turn of the event loop.
 */
function afterWaitingReads(verdict: () => void): void {
  setImmediate(verdict);
}
