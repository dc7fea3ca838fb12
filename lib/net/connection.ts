import {
  BadArgumentsError,
  ClosedError,
  ConnectionLostError,
  errorFromPayload,
  errorToPayload,
  TimeoutError,
} from "../errors.js";
import { debug, debugging, warn } from "../log.js";
import { decodeMessage, encodeMessage, reframe } from "../wire/codec.js";
import { FrameDecoder } from "../wire/frame-decoder.js";
import type { Limits } from "../wire/limits.js";
import { Kind, KIND_NAMES, type ExcBody, type HelloBody, type Message, type RepBody } from "../wire/message.js";
import { deadlines, type Deadline } from "./deadline-wheel.js";
import { IGNORABLE_ERRORS, type Transport } from "./transport.js";

interface Pending {
  resolve: (value: any) => void;
  reject: (error: Error) => void;
  what: string;
  deadline: Deadline | null;
  /** Settle with the answering message itself, unread (a router relaying it). */
  raw: boolean;
}

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
}

/**
 * One persistent link to a peer, carrying any number of concurrent requests, each matched to
 * its answer by id. Frames are decoded here, answers settled here, and everything else is
 * handed to `onMessage`.
 */
export class Connection {
  /** The peer's hello, once it arrived. */
  peer: HelloBody | undefined;
  closed = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Waits (besides requests) that keep a `refWhilePending` link referenced. */
  private holds = 0;
  private readonly decoder: FrameDecoder;

  constructor(readonly transport: Transport, private readonly options: ConnectionOptions) {
    this.decoder = new FrameDecoder(options.limits.maxFrameBytes);
    if (options.refWhilePending) transport.unref();
    transport.start(
      (chunk) => this.receive(chunk),
      (error) => this.closedBy(error),
    );
  }

  get label(): string {
    return this.options.label;
  }

  set label(label: string) {
    this.options.label = label;
  }

  get pendingCount(): number {
    return this.pending.size;
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
    this.transport.write(encodeMessage(kind, id, body, this.options.limits));
  }

  /** Sends a frame encoded once for many recipients (publications, pool notices). */
  sendEncoded(frame: Buffer | Buffer[]): void {
    if (!this.closed) this.transport.write(frame);
  }

  /**
   * Sends a message and settles with the `rep` value or the `exc` error that answers it.
   * `what` names the request in errors (the function called, or "hello", "announce"...).
   */
  request(kind: Kind, body: object, what: string, timeoutMs: number): Promise<any> {
    return this.start(kind, body, what, timeoutMs, false);
  }

  /**
   * Passes a request received elsewhere on as it came (its frame, under a new id) and settles
   * with the answer's frame, unread, for `replyWith`: a router relays without decoding the
   * answer or encoding anything again. Timeouts and loss still reject with a LabcError.
   */
  relay(request: Message, what: string, timeoutMs: number): Promise<Buffer> {
    return this.start(request.kind, request, what, timeoutMs, true);
  }

  private start(kind: Kind, body: object, what: string, timeoutMs: number, raw: boolean): Promise<any> {
    if (this.closed) return Promise.reject(new ConnectionLostError(this.options.label, what));
    const id = this.nextId;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    let frame: Buffer | Buffer[];
    try {
      frame = raw ? reframe((body as Message).frame!, id) : encodeMessage(kind, id, body, this.options.limits);
    } catch (error) {
      if (error instanceof BadArgumentsError) {
        return Promise.reject(new BadArgumentsError(`${what}: ${error.message}`));
      }
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      const entry: Pending = { resolve, reject, what, deadline: null, raw };
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        entry.deadline = deadlines.add(timeoutMs, () => {
          if (this.pending.delete(id)) {
            this.released();
            reject(new TimeoutError(what, timeoutMs, this.options.label));
          }
        });
      }
      if (this.pending.size === 0 && this.options.refWhilePending) this.transport.ref();
      this.pending.set(id, entry);
      this.transport.write(frame);
    });
  }

  reply(id: number, value: unknown): void {
    if (this.closed) return;
    try {
      this.transport.write(encodeMessage(Kind.rep, id, { v: value }, this.options.limits));
    } catch (error) {
      this.replyError(id, error);
    }
  }

  /** Passes on an answer relayed from elsewhere (its frame), under this connection's request id. */
  replyWith(id: number, answer: Buffer): void {
    if (this.closed) return;
    this.transport.write(reframe(answer, id));
  }

  /** Passes on a message received elsewhere that expects no answer, as it came. */
  forward(message: Message): void {
    if (!this.closed) this.transport.write(reframe(message.frame!, 0));
  }

  replyError(id: number, error: unknown): void {
    if (this.closed) return;
    const body = errorToPayload(error, this.options.sendStacks === true);
    this.transport.write(encodeMessage(Kind.exc, id, body, this.options.limits));
  }

  close(): void {
    if (this.closed) return;
    this.transport.close();
    this.closedBy(undefined);
  }

  private receive(chunk: Buffer): void {
    this.options.onReceive?.();
    try {
      this.decoder.push(chunk, (frame) => this.frameIn(frame));
    } catch (error) {
      // The stream is no longer aligned on frames: this link is done, the others are not.
      warn(`closing connection from ${this.transport.remote} (${this.options.label}): ${(error as Error).message}`);
      this.transport.close();
      this.closedBy(error as Error);
    }
  }

  private frameIn(frame: Buffer): void {
    const kind = frame[0];
    if (kind === Kind.rep || kind === Kind.exc) {
      // An answer being relayed is passed on unread.
      const id = frame.readUInt32BE(4);
      const entry = this.pending.get(id);
      if (entry?.raw) {
        this.settle(id, entry);
        return entry.resolve(frame);
      }
    }
    this.dispatch(decodeMessage(frame));
  }

  /** Takes an answered request out of the waiting ones; the caller then resolves or rejects it. */
  private settle(id: number, entry: Pending): void {
    this.pending.delete(id);
    if (entry.deadline) deadlines.cancel(entry.deadline);
    this.released();
  }

  private dispatch(message: Message): void {
    if (debugging) debug("%s %s #%d", this.options.label, KIND_NAMES[message.kind], message.id);
    if (message.kind === Kind.rep || message.kind === Kind.exc || message.kind === Kind.pong) {
      const entry = this.pending.get(message.id);
      if (!entry) return; // answer to a request that timed out: nobody waits for it
      this.settle(message.id, entry);
      if (message.kind === Kind.rep) entry.resolve((message.body as RepBody).v);
      else if (message.kind === Kind.pong) entry.resolve(undefined);
      else entry.reject(errorFromPayload(message.body as ExcBody, entry.what, this.options.label));
      return;
    }
    if (message.kind === Kind.hello) this.peer = message.body;
    this.options.onMessage?.(message, this);
  }

  private released(): void {
    if (this.pending.size === 0 && this.holds === 0 && this.options.refWhilePending && !this.closed) this.transport.unref();
  }

  private closedBy(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    if (error && !IGNORABLE_ERRORS.has((error as NodeJS.ErrnoException).code ?? "")) {
      debug("%s closed: %s", this.options.label, error.message);
    }
    for (const entry of this.pending.values()) {
      if (entry.deadline) deadlines.cancel(entry.deadline);
      entry.reject(new ConnectionLostError(this.options.label, entry.what, error));
    }
    this.pending.clear();
    this.options.onClose?.(this, error);
  }
}
