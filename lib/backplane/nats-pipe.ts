import { nowMs } from "../clock.js";
import { LimitError } from "../errors.js";
import type { Transport } from "../net/transport.js";

/** One side of a direct call's frames over NATS (docs/backplane.md#direct-calls), as a Transport. */

/**
 * What a pipe needs of the link it runs over (a NatsLink). The link makes pipes and the pipe
 * sees it through this alone: nats-link.ts imports this file, and this file nothing of it.
 */
export interface PipeLink {
  /** Queues bytes for `subject`, with `reply` as the message's reply subject. */
  publish(subject: string, reply: string | undefined, data: Buffer | Buffer[]): void;
  /** Bytes written and not yet with the system. */
  readonly queuedBytes: number;
  /** A pipe wants the process kept alive (a request of its waits), or no longer. */
  hold(change: 1 | -1): void;
  /** A pipe is open (told of the socket's drain, ended with the link), or no longer. */
  track(pipe: NatsPipe, open: boolean): void;
  /** Resolves once what was queued so far is with the system, or after `graceMs`. */
  flushed(graceMs: number): Promise<void>;
}

/**
 * One caller's side or one server's side of the frames between them over a NatsLink, as a
 * Transport: a Connection runs over it as over a socket. The caller's frames go to the server's
 * subject with the caller's reply subject; the server's go to that reply subject.
 */
export class NatsPipe implements Transport {
  readonly remote: string;
  activeAt = nowMs();
  /** Whether the Connection on it still serves requests (a server-side pipe is not closed idle then). */
  busy: () => boolean = () => false;
  private onData: ((chunk: Buffer) => void) | undefined;
  private onClose: ((error?: Error) => void) | undefined;
  private onDrain: (() => void) | undefined;
  /** Bytes that may wait while paused; past it the caller is cut off (a Limits value of the owner). */
  maxWaitingBytes = 16 * 1024 * 1024;
  private held = false;
  private paused = false;
  private waiting: Buffer[] = [];
  private waitingBytes = 0;
  private ended = false;

  constructor(
    private readonly link: PipeLink,
    readonly to: string,
    private readonly reply: string | undefined,
    private readonly forget: () => void,
  ) {
    this.remote = `NATS ${to}`;
    link.track(this, true);
  }

  write(data: Buffer | Buffer[]): void {
    if (this.ended) return;
    this.activeAt = nowMs();
    this.link.publish(this.to, this.reply, data);
  }

  get queuedBytes(): number {
    return this.link.queuedBytes;
  }

  start(onData: (chunk: Buffer) => void, onClose: (error?: Error) => void, onDrain?: () => void): void {
    this.onData = onData;
    this.onClose = onClose;
    this.onDrain = onDrain;
  }

  receive(chunk: Buffer): void {
    if (this.ended) return;
    this.activeAt = nowMs();
    // Paused: the Connection has as many requests of this caller as it takes. What the caller
    // sends meanwhile waits here, up to `maxWaitingBytes`; NATS cannot be asked to hold it.
    if (this.paused) {
      this.waitingBytes += chunk.length;
      if (this.waitingBytes > this.maxWaitingBytes) {
        return this.end(new LimitError("unsent", `over ${this.maxWaitingBytes} bytes sent by ${this.to} while its requests waited`));
      }
      this.waiting.push(chunk);
      return;
    }
    this.onData?.(chunk);
  }

  drained(): void {
    this.onDrain?.();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    while (!this.paused && this.waiting.length && !this.ended) {
      const chunk = this.waiting.shift()!;
      this.waitingBytes -= chunk.length;
      this.onData?.(chunk);
    }
  }

  /** Ends the pipe on this side: its Connection hears `error` (none: closed in order). */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.waiting = [];
    this.unref();
    this.link.track(this, false);
    this.forget();
    this.onClose?.(error);
  }

  close(graceMs = 1000): Promise<void> {
    this.end();
    return this.link.flushed(graceMs);
  }

  destroy(): void {
    this.end();
  }

  ref(): void {
    if (this.held || this.ended) return;
    this.held = true;
    this.link.hold(1);
  }

  unref(): void {
    if (!this.held) return;
    this.held = false;
    this.link.hold(-1);
  }
}
