// One persistent link to a peer: frames in and out, dispatched to our requests, the peer's, or onMessage.
import { BadArgumentsError, BadMessageError, ClosedError, ConnectionLostError, LabcError, LimitError } from "../errors.js";
import { encodeError } from "../wire/error-payload.js";
import { debug, debugging, warn } from "../log.js";
import { decodeMessage, encodeItem, encodeMessage, reframe } from "../wire/codec.js";
import type { ItemStream, StreamSource } from "./item-stream.js";
import { PeerRequests, type Cancellable, type StreamOutlet } from "./peer-requests.js";
import { FrameDecoder } from "../wire/frame-decoder.js";
import { replyFrame, requestFrame } from "../wire/frame-text.js";
import type { Metered, Metrics } from "../metrics.js";
import { Kind, KIND_NAMES, type CreditBody, type HelloBody, type Message, type RepBody } from "../wire/message.js";
import { problemWith } from "../wire/validate.js";
import { fromOwnHost } from "../trust/own-address.js";
import { InboundGuard } from "./inbound-guard.js";
import type { Limits } from "../wire/limits.js";
import { Outbox, type Frame } from "./outbox.js";
import { Requests, type RelayReceiver } from "./requests.js";
import { IGNORABLE_ERRORS, type Transport } from "./transport.js";
import { tripped } from "./trips.js";

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
  /** Keep the process alive only while a request waits (Requests), as outgoing links do. */
  refWhilePending?: boolean;
  /** Send our stack with the errors we report to this peer. */
  sendStacks?: boolean;
  /** The peer dialed us: it must say hello first, and soon, and may be paused (InboundGuard). */
  accepted?: boolean;
  /** Where this connection's traffic and the calls made over it count (off when absent). */
  metrics?: Metrics;
}

/**
 * Any number of concurrent requests both ways. Frames are decoded and every body validated here;
 * answers go to Requests, cancels and credit to PeerRequests, everything else to `onMessage`.
 * InboundGuard bounds what the peer may make it hold; Outbox sends.
 */
export class Connection implements Metered {
  /** What crossed this connection, for `labc metrics`. */
  readonly traffic = { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0, readPauses: 0, writeWaits: 0 };
  /** The peer's hello, once it arrived. */
  peer: HelloBody | undefined;
  /** Who is on the other side, as errors name it (a router renames a link once it knows). */
  label: string;
  closed = false;
  private readonly requests: Requests;
  private readonly incoming = new PeerRequests();
  private readonly decoder: FrameDecoder;
  private readonly guard: InboundGuard;
  private readonly outbox: Outbox;
  private readonly onFrame = (frame: Buffer) => this.frameIn(frame);
  private own: boolean | undefined;

  constructor(readonly transport: Transport, private readonly options: ConnectionOptions) {
    this.label = options.label;
    this.decoder = new FrameDecoder(options.limits.maxFrameBytes, options.limits.partialFrames, transport.lendsChunks);
    this.outbox = new Outbox(transport, options.limits, this.traffic, (error) => this.fail(error));
    this.requests = new Requests({
      label: () => this.label,
      closed: () => this.closed,
      write: (frame, waitedFor) => this.outbox.write(frame, waitedFor),
      ref: () => transport.ref(),
      unref: () => transport.unref(),
    }, options.refWhilePending === true);
    options.metrics?.connections.add(this);
    const guarded = {
      transport,
      closed: () => this.closed,
      greeted: () => this.peer !== undefined,
      frameIdle: () => this.decoder.idle,
      bytesIn: () => this.traffic.bytesIn,
      servingCount: () => this.incoming.count,
      countPause: () => void this.traffic.readPauses++,
      fail: (error: LabcError) => this.fail(error),
    };
    this.guard = new InboundGuard(guarded, options.limits, options.accepted === true);
    transport.start(
      (chunk) => this.receive(chunk),
      (error) => this.closedBy(error),
      () => this.drained(),
    );
  }

  /** Whether the peer is a process of this host, by the address it connects from (not its hello). */
  get fromOwnHost(): boolean {
    return (this.own ??= fromOwnHost(this.transport.remote));
  }

  /** Requests from the peer not answered yet. */
  get servingCount(): number {
    return this.incoming.count;
  }

  /** More is queued for the peer than it reads: a sender should wait for `drain()`. */
  get congested(): boolean {
    return this.outbox.congested;
  }

  /** Resolves once what is queued for the peer is under `maxUnsentBytes` again (or it closed). */
  drain(): Promise<void> {
    return this.closed ? Promise.resolve() : this.outbox.drain();
  }

  /** Resolves once every request from the peer has been answered. */
  served(): Promise<void> {
    return this.closed ? Promise.resolve() : this.incoming.served();
  }

  /** Keeps the process alive until `until` settles, as a pending request does (Requests.hold). */
  holdUntil(until: Promise<unknown>): void {
    this.requests.hold(until);
  }

  /** Sends a message that expects no answer. Throws BadArgumentsError if it cannot be encoded. */
  send(kind: Kind, body: object, id = 0): void {
    if (this.closed) throw new ClosedError(`connection to ${this.label}`);
    this.outbox.write(encodeMessage(kind, id, body, this.options.limits));
  }

  /** Sends a frame encoded once for many recipients (pool notices; publications go by `publish`). */
  sendEncoded(frame: Buffer | Buffer[]): void {
    if (!this.closed) this.outbox.write(frame);
  }

  /**
   * Sends a message and settles with the `rep` value or the `exc` error that answers it.
   * `what` names the request in errors (the function called, or "hello", "announce"...).
   * A timeout, or `signal` firing, also tells the peer that the request is cancelled.
   */
  request(kind: Kind, body: object, what: string, timeoutMs: number, signal?: AbortSignal): Promise<any> {
    let frame: Buffer | Buffer[];
    try {
      frame = this.encodeRequest(what, kind, body);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.requests.start(frame, what, timeoutMs, signal).answer;
  }

  /**
   * Calls function `fn` of the peer: `request` for a `req`, its body written straight as text (with a `trace` only
   * when hooks give one). `flags` go in the header (FLAG_FAR); `target`: the server, by way of the routers.
   */
  call(fn: string, args: unknown[], timeoutMs: number, signal?: AbortSignal, trace?: string, flags = 0, target?: string): Promise<any> {
    let frame: Frame;
    try {
      const ms = timeoutMs > 0 && Number.isFinite(timeoutMs) ? timeoutMs : undefined;
      frame = requestFrame(this.requests.nextId, fn, args, ms, this.options.limits, trace, flags, target);
    } catch (error) {
      return Promise.reject(error instanceof BadArgumentsError ? new BadArgumentsError(`${fn}: ${error.message}`) : error);
    }
    return this.requests.start(frame, fn, timeoutMs, signal, undefined, this.options.metrics?.calledStats(fn)).answer;
  }

  /**
   * Passes a request received elsewhere on as it came (its frame, under a new id); the answer's
   * frame, unread, goes to `receiver` (for `replyWith`): a router relays without decoding the
   * answer or encoding anything again. Timeouts and loss fail it with a LabcError; `cancel`
   * with the id returned gives the request up.
   */
  relay(request: Message, what: string, timeoutMs: number, receiver: RelayReceiver): number {
    return this.requests.relay(reframe(request.frame!, this.requests.nextId), what, timeoutMs, receiver);
  }

  /**
   * Calls `fn` of the peer as a stream: its items go to `stream` as they arrive, `window` of them
   * at most ahead of its reader, and the answer ends it. `extra` adds to the request's body
   * (`target`, through a router). The timeout covers the wait for the first item or the answer.
   */
  openStream(fn: string, args: unknown[], extra: object, timeoutMs: number, signal: AbortSignal | undefined, stream: ItemStream<any>): StreamSource {
    const frame = this.encodeRequest(fn, Kind.req, { fn, args, ...extra, credit: stream.window });
    const { id, answer } = this.requests.start(frame, fn, timeoutMs, signal, (value) => stream.push(value));
    answer.then((body: RepBody) => stream.end(body), (error) => stream.fail(error));
    return { grant: (n) => this.grant(id, n), cancel: () => this.cancel(id) };
  }

  /** Lets the peer send `n` more items of the stream answering our request `id`. */
  grant(id: number, n: number): void {
    this.requests.grant(id, n);
  }

  /** Where a stream answering the peer's request `id` sends its items and its end. */
  outlet(id: number): StreamOutlet {
    const connection = this;
    return {
      item: (value) => this.outbox.write(encodeItem(id, value, this.options.limits)),
      end: () => {
        if (this.closed) return;
        this.outbox.write(encodeMessage(Kind.rep, id, { done: true }));
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
    if (!this.closed && this.incoming.has(id)) this.outbox.write(reframe(item, id));
  }

  /** Gives up a request of ours: it rejects with CancelledError and the peer is told. */
  cancel(id: number, reason?: unknown): void {
    this.requests.cancel(id, reason);
  }

  /** The server serving request `id` of the peer says how to cancel it. */
  track(id: number, call: Cancellable): void {
    this.incoming.track(id, call);
  }

  reply(id: number, value: unknown): void {
    if (this.closed) return;
    try {
      this.outbox.write(replyFrame(id, value, this.options.limits), true);
    } catch (error) {
      return this.replyError(id, error);
    }
    this.answered(id);
  }

  /** Passes on an answer relayed from elsewhere (its frame), under this connection's request id. */
  replyWith(id: number, answer: Buffer): void {
    if (this.closed) return;
    this.outbox.write(reframe(answer, id), true);
    this.answered(id);
  }

  /** Passes on a publication received elsewhere, as it came; false when not sent (`publish`). */
  forward(message: Message): boolean {
    return this.publish(reframe(message.frame!, 0));
  }

  /**
   * Queues a publication, encoded once for every subscriber, unless the peer leaves so much
   * unread that it would pass `maxQueuedBytes` (Outbox.publish): then it is not sent (false),
   * said in the log, and the connection stays with all it holds. A publisher that awaits is
   * slowed long before that (`congested`).
   */
  publish(frame: Frame): boolean {
    return !this.closed && this.outbox.publish(frame, this.label);
  }

  replyError(id: number, error: unknown): void {
    if (this.closed) return;
    this.writeError(id, error);
    this.answered(id);
  }

  /** A request of ours under the next id; a value that cannot travel is a BadArgumentsError naming `what`. */
  private encodeRequest(what: string, kind: Kind, body: object): Buffer | Buffer[] {
    try {
      return encodeMessage(kind, this.requests.nextId, body, this.options.limits);
    } catch (error) {
      throw error instanceof BadArgumentsError ? new BadArgumentsError(`${what}: ${error.message}`) : error;
    }
  }

  private writeError(id: number, error: unknown): void {
    this.outbox.write(encodeError(id, error, this.options.sendStacks === true, this.options.limits), true);
  }

  /** Closes after what was written; resolves once it left (see Transport.close). */
  close(graceMs?: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    const flushed = this.transport.close(graceMs);
    this.closedBy(undefined);
    return flushed;
  }

  /** A request of the peer was answered. */
  private answered(id: number): void {
    if (this.incoming.end(id) && this.guard.paused) this.guard.flow();
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
    this.guard.read();
  }

  private frameIn(frame: Buffer): void {
    if (this.closed) return;
    this.traffic.framesIn++;
    const kind = frame[0];
    // An answer, or a stream's item, being relayed is passed on unread.
    if ((kind === Kind.rep || kind === Kind.exc || kind === Kind.item) && this.requests.answerUnread(kind, frame)) return;
    this.dispatch(decodeMessage(frame));
  }

  private dispatch(message: Message): void {
    if (debugging) debug("%s %s #%d", this.label, KIND_NAMES[message.kind], message.id);
    const problem = problemWith(message.kind, message.body);
    if (problem) return this.refuse(message, problem);
    // An answer to a reused id would be taken for the answer to the request still served under it.
    if (message.id !== 0 && ANSWERED.has(message.kind) && this.incoming.has(message.id)) {
      return this.refuse(message, `request id ${message.id} is already in use`);
    }
    switch (message.kind) {
      case Kind.rep:
      case Kind.exc:
      case Kind.pong:
      case Kind.item:
        return this.requests.answer(message);
      case Kind.cancel:
        return this.incoming.get(message.id)?.cancel();
      case Kind.credit:
        return this.incoming.get(message.id)?.credit?.((message.body as CreditBody).n);
      case Kind.hello:
        this.peer = message.body;
        this.guard.helloCame();
        break;
      case Kind.req:
        this.incoming.begin(message.id);
    }
    if (this.options.accepted && !this.peer) return this.refuse(message, "the first message on a connection must be a hello");
    try {
      this.options.onMessage?.(message, this);
    } catch (error) {
      // A fault of ours in handling one message: the connection and its other messages go on.
      warn(`${KIND_NAMES[message.kind]} from ${this.label} failed`, error);
      if (message.id !== 0 && ANSWERED.has(message.kind)) this.replyError(message.id, error);
    }
    if (message.kind === Kind.req && this.options.accepted) this.guard.flow();
  }

  /** A body that does not fit its kind: answered when the peer waits, else the connection closes (protocol.md#refusals). */
  private refuse(message: Message, problem: string): void {
    const error = new BadMessageError(KIND_NAMES[message.kind] ?? String(message.kind), problem);
    if (message.kind === Kind.rep || message.kind === Kind.exc) {
      const entry = this.requests.get(message.id);
      tripped("bad_message", this.transport.remote, error.message);
      if (entry) this.requests.reject(message.id, entry, error);
      return;
    }
    const answered = message.id !== 0 && ANSWERED.has(message.kind);
    if (answered && (this.peer || !this.options.accepted)) {
      tripped("bad_message", this.transport.remote, error.message);
      // Not `replyError`: the id may be that of a request still being served.
      return this.writeError(message.id, error);
    }
    const hello = answered && message.kind === Kind.hello; // a refused hello: its sender learns why before the close
    if (hello) this.writeError(message.id, error);
    this.fail(error, hello ? 1000 : 0);
  }

  private drained(): void {
    if (this.guard.paused) this.guard.flow();
    this.outbox.drained();
  }

  /** A limit tripped or the peer sent something unreadable: this connection ends, with why. */
  private fail(error: LabcError, graceMs = 0): void {
    if (this.closed) return;
    const limit =
      error instanceof LimitError ? error.limit : error.code === "LABC_BAD_MESSAGE" ? "bad_message" : error.code === "LABC_FRAME_TOO_LARGE" ? "max_frame_size" : "bad_frame";
    tripped(limit, this.transport.remote, `${error.message}; closed the connection (${this.label})`);
    void this.transport.close(graceMs);
    this.closedBy(error);
  }

  private closedBy(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.options.metrics?.connections.delete(this);
    if (error && !IGNORABLE_ERRORS.has((error as NodeJS.ErrnoException).code ?? "")) {
      debug("%s closed: %s", this.label, error.message);
    }
    this.decoder.release();
    this.guard.stop();
    this.requests.failAll((entry) => new ConnectionLostError(this.label, entry.what, error));
    // Nobody is left to answer: the handlers still running may stop.
    this.incoming.cancelAll(new ConnectionLostError(this.label));
    this.outbox.release();
    this.options.onClose?.(this, error);
  }
}
