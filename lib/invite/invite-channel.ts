import type { Socket } from "node:net";

/** The most one message of an invite's exchange may hold: its largest is under 1 kB. */
export const MAX_INVITE_MESSAGE = 4096;

/** A message of the exchange: one JSON object. Binary fields are base64url text. */
export type InviteMessage = Record<string, unknown>;

/** What the exchange needs of a connection (InviteChannel; a wrapper in tests or the server). */
export interface MessagePipe {
  send(message: InviteMessage): void;
  /** Sends a last message, if any, and closes. */
  end(message?: InviteMessage): void;
  receive(): Promise<InviteMessage>;
}

/** The exchange broke off: the peer closed, sent something malformed, or was too slow. */
export class ChannelClosed extends Error {}

/**
 * One TCP connection of an invite's exchange, as messages: each a 2-byte big-endian length and
 * that many bytes of UTF-8 JSON (docs/protocol.md#invites). A length over MAX_INVITE_MESSAGE, a
 * body that is not a JSON object, or silence past `timeoutMs` ends the channel.
 */
export class InviteChannel implements MessagePipe {
  private buffered = Buffer.alloc(0);
  private readonly queue: InviteMessage[] = [];
  private waiting?: { resolve: (message: InviteMessage) => void; reject: (error: Error) => void; timer: NodeJS.Timeout };
  private failure?: Error;

  constructor(
    readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    socket.on("data", (chunk: Buffer) => this.take(chunk));
    socket.on("error", (error) => this.fail(new ChannelClosed(`the connection failed (${(error as NodeJS.ErrnoException).code ?? error.message})`)));
    socket.on("close", () => this.fail(new ChannelClosed("the other side closed the connection")));
  }

  /** Where the peer is, as "address:port". */
  get peer(): string {
    return `${(this.socket.remoteAddress ?? "?").replace(/^::ffff:/, "")}:${this.socket.remotePort}`;
  }

  get peerAddress(): string {
    return (this.socket.remoteAddress ?? "?").replace(/^::ffff:/, "");
  }

  send(message: InviteMessage): void {
    const body = Buffer.from(JSON.stringify(message));
    const length = Buffer.alloc(2);
    length.writeUInt16BE(body.length);
    if (!this.socket.destroyed) this.socket.write(Buffer.concat([length, body]));
  }

  /** Sends a last message and closes once it is written. */
  end(message?: InviteMessage): void {
    if (message) this.send(message);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** The next message; rejects with ChannelClosed when none can come. */
  receive(): Promise<InviteMessage> {
    const next = this.queue.shift();
    if (next) return Promise.resolve(next);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new ChannelClosed(`no answer within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
      this.waiting = { resolve, reject, timer };
    });
  }

  private take(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 2) {
      const length = this.buffered.readUInt16BE(0);
      // The declared length is checked before anything is buffered for it.
      if (length > MAX_INVITE_MESSAGE) return this.fail(new ChannelClosed(`a message of ${length} bytes (at most ${MAX_INVITE_MESSAGE})`));
      if (this.buffered.length < 2 + length) return;
      const body = this.buffered.subarray(2, 2 + length);
      this.buffered = this.buffered.subarray(2 + length);
      let message: unknown;
      try {
        message = JSON.parse(body.toString("utf8"));
      } catch {
        return this.fail(new ChannelClosed("a message that is not JSON"));
      }
      if (typeof message !== "object" || message === null || Array.isArray(message)) return this.fail(new ChannelClosed("a message that is not a JSON object"));
      this.deliver(message as InviteMessage);
    }
  }

  private deliver(message: InviteMessage): void {
    const waiting = this.waiting;
    if (!waiting) {
      if (this.queue.length < 8) this.queue.push(message);
      return;
    }
    this.waiting = undefined;
    clearTimeout(waiting.timer);
    waiting.resolve(message);
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.socket.destroy();
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      clearTimeout(waiting.timer);
      waiting.reject(error);
    }
  }
}
