import { writeSync } from "node:fs";
import net from "node:net";
import type { Transport } from "./transport.js";
import type { ReadSlab } from "./read-slab.js";
import { keptPromise, type HandsOverAtExit, promiseAtExit, writeAllSync } from "./at-exit.js";

/** Frames up to this size written in one tick are joined into one buffer before the socket. */
const COALESCE_BYTES = 1024;
/**
 * Requests and answers waiting for the end of the tick leave at once past this many bytes: the
 * peer starts on them while this process makes the rest, two processes working at once rather
 * than in turn (100 calls in flight: 1.5x the calls per second). Publications wait for the end
 * of the tick whatever their number: fewer, larger writes are what their rate needs.
 */
const EAGER_BYTES = 2048;
/** Text joined by writeText before it becomes bytes (V8's strings stop at about 512 MiB). */
const MAX_TEXT = 16 * 1024 * 1024;
/** Written after others to learn, by its callback, when they have left. */
const EMPTY = Buffer.alloc(0);
/**
 * `committed()` promises at once that a tick's frames leave even if the process exits next only
 * while they are at most this many bytes: the exit hook must be able to hand them over then.
 * Past it an awaiting publisher waits for the write: a loop of `await publish()` then writes
 * about a thousand small publications at a time (256 KiB measured no faster, and the first of
 * them waited longer).
 */
const COMMITTED_BYTES = 64 * 1024;

export class TcpTransport implements Transport, HandsOverAtExit {
  /** Small frames written this tick, not yet handed to the socket. */
  private small: Buffer[] = [];
  /** Frames written this tick as latin1 text (writeText), after those in `small`. */
  private text = "";
  /** The bytes of `small` and `text`. */
  private smallBytes = 0;
  private scheduled = false;
  private corked = false;
  /** What `sent()` handed out for the writes of this tick, settled once they are with the system. */
  private whenSent: { promise: Promise<void>; done: () => void } | null = null;
  /** `committed()` promised this tick's frames: the exit hook hands them over if the process exits first. */
  private promised = false;
  /**
   * Promised bytes the system did not take at once, handed to the socket after them: until its
   * write completes, the exit hook writes what the socket still holds of them.
   */
  private atRisk: Buffer | undefined;
  /** A plain socket's descriptor, which promised bytes are written to directly; undefined for TLS. */
  private readonly fd: number | undefined;
  /** Given to `start`: bytes queued for the peer have left. */
  private onDrain: (() => void) | undefined;
  /** Someone waits for `onDrain` (see `wantDrain`): the next flush arranges it. */
  private drainWanted = false;
  /** An empty write of `wantDrain`'s is under way. */
  private probing = false;
  /** Set by the listener: the peer proved itself (see Transport.vouch). */
  whenVouched: (() => void) | undefined;
  private readonly flush = () => {
    this.scheduled = false;
    const handed = this.smallBytes > 0 || this.corked;
    const sent = this.whenSent;
    this.whenSent = null;
    // Whoever waits (`sent()`; `wantDrain`, as "drain" comes only past the high-water mark) is
    // told once all has left: by the callback of this flush's write, else of an empty write.
    // Only then: a TLS socket completes each write a turn later (an empty write after each was
    // a tenth of a lone secured call's CPU, and one more turn for `await publish()`).
    let told = false;
    const tell = sent || this.drainWanted
      ? () => {
          if (told) return;
          told = true;
          sent?.done();
          this.onDrain?.();
        }
      : undefined;
    const carried = this.handOver(tell);
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
    if (!handed && !tell) return;
    if (this.socket.writableLength === 0 || this.socket.destroyed) {
      // Written at once (the usual case): nothing is left in this process.
      this.drainWanted = false;
      if (tell) tell();
      else this.onDrain?.();
    } else if (this.socket.writableEnded) {
      // Ending (`close`): nothing may be written after the end, which delivers what the socket
      // holds; its close tells whoever waits (the connection's `release`).
      this.drainWanted = false;
      if (sent) this.socket.once("close", sent.done);
    } else if (tell) {
      this.drainWanted = false;
      if (!carried) this.socket.write(EMPTY, tell);
    }
  };

  constructor(
    private readonly socket: net.Socket,
    /** For a socket dialed with its `options` as `onread`: reads come from there. */
    private readonly slab?: ReadSlab,
    /** LOCAL_SOCKET for one of this host's Unix sockets, which have no address. */
    readonly remote = `${socket.remoteAddress}:${socket.remotePort}`,
  ) {
    const fd = socket.constructor === net.Socket ? (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd : undefined;
    this.fd = typeof fd === "number" && fd >= 0 ? fd : undefined;
    // Requests are small and latency-bound; batching is done per tick instead.
    socket.setNoDelay(true);
  }

  /**
   * Queues a frame (or the parts of one) to leave at the end of this tick, with everything else
   * written in it: one system call for many messages. Small frames are copied into one buffer,
   * since a socket write costs more than copying tens of bytes; large ones go as they are.
   * Requests and answers (`waitedFor`) do not wait past EAGER_BYTES.
   */
  write(data: Buffer | Buffer[], waitedFor = false): void {
    if (this.socket.destroyed) return;
    this.schedule();
    let bytes = 0;
    if (Array.isArray(data)) for (const part of data) bytes += part.length;
    else bytes = data.length;
    if (bytes <= COALESCE_BYTES) {
      if (this.text) this.textToSmall();
      if (Array.isArray(data)) this.small.push(...data);
      else this.small.push(data);
      this.smallBytes += bytes;
      if (waitedFor && this.smallBytes >= EAGER_BYTES && !this.corked) this.handOver();
      return;
    }
    // Whatever this tick wrote before, then this frame's parts, all in one writev at the flush
    // (what was promised goes first, on its own: see `handOverPromised`).
    if (this.promised) this.handOver();
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
    }
    this.handOver();
    if (Array.isArray(data)) for (const part of data) this.socket.write(part);
    else this.socket.write(data);
  }

  /**
   * Queues a frame given as latin1 text (see Transport.writeText) to leave with the rest of the
   * tick: V8 joins strings without copying, and the flush makes them bytes in one pass, so a
   * tick of small frames costs one buffer instead of one per frame and their join. Requests and
   * answers (`waitedFor`) leave past EAGER_BYTES, as in `write`.
   */
  writeText(text: string, waitedFor = false): void {
    if (this.socket.destroyed) return;
    this.schedule();
    if (text.length > COALESCE_BYTES) {
      // A large frame is not joined (a copy more of it, in a string V8 then flattens): it goes as
      // it is after what came before, as a large buffer in `write`; behind writes as a buffer.
      if (this.promised) this.handOver();
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
      }
      this.handOver();
      this.socket.write(this.socket.writableLength > 0 ? Buffer.from(text, "latin1") : text, "latin1");
      return;
    }
    // A string has a greatest length, and a tick that publishes without end must not reach it.
    if (this.text.length > MAX_TEXT) this.textToSmall();
    this.text += text;
    this.smallBytes += text.length;
    if (waitedFor && this.smallBytes >= EAGER_BYTES && !this.corked) this.handOver();
  }

  /**
   * See Transport.wantDrain. One empty write at a time answers it (the guard and the outbox may
   * both ask after each `onDrain`); none once the socket ends or is destroyed: its close tells
   * everyone, and its bytes never leave before it.
   */
  wantDrain(): void {
    const { socket } = this;
    if (socket.destroyed || socket.writableEnded) return;
    if (this.scheduled) {
      this.drainWanted = true;
      return;
    }
    if (this.probing) return;
    this.probing = true;
    const done = () => {
      this.probing = false;
      this.onDrain?.();
    };
    if (socket.writableLength === 0) process.nextTick(done);
    else socket.write(EMPTY, done);
  }

  sent(): Promise<void> {
    if (!this.scheduled && this.socket.writableLength === 0) return Promise.resolve();
    this.schedule();
    if (!this.whenSent) {
      let done!: () => void;
      const promise = new Promise<void>((resolve) => (done = resolve));
      this.whenSent = { promise, done };
    }
    return this.whenSent.promise;
  }

  /**
   * See Transport.committed. At once (undefined) while this process holds nothing unsent for the
   * socket but this tick's frames, up to COMMITTED_BYTES: those the exit hook hands over if the
   * process exits before the tick ends. An `await publish()` then costs no system call of its
   * own, which is what publishing in a loop of `await`s needs: one write per tick, as
   * fire-and-forget. Past that, or while the peer reads slower than we write, once with the system.
   */
  committed(): Promise<void> | undefined {
    const { socket } = this;
    if (socket.destroyed) return undefined;
    // TLS cannot be written to at the exit but through its socket, which may take only part.
    if (this.fd === undefined || socket.writableLength > 0 || this.smallBytes > COMMITTED_BYTES) return this.sent();
    if (this.scheduled && !this.promised) {
      this.promised = true;
      promiseAtExit(this);
    }
    return undefined;
  }

  /**
   * The process is exiting (its "exit" event, where the event loop no longer runs) with bytes
   * promised and not yet with the system: written to the descriptor now, waiting until `until`
   * for a peer whose buffers are full. First what the socket still holds of the promised bytes
   * it was given (`atRisk`: the last `writeQueueSize` of them, its write being the one under
   * way), then this tick's; never both, as nothing is promised while the socket holds anything.
   */
  handOverAtExit(until: number): void {
    const { fd, socket, atRisk } = this;
    if (fd === undefined || socket.destroyed) return;
    if (atRisk) {
      this.atRisk = undefined;
      const held = (socket as unknown as { _handle?: { writeQueueSize?: unknown } })._handle?.writeQueueSize;
      const left = typeof held === "number" ? Math.min(held, atRisk.length) : atRisk.length;
      writeAllSync(fd, atRisk.subarray(atRisk.length - left), until);
    }
    if (this.promised) {
      this.promised = false;
      writeAllSync(fd, this.takeQueued(), until);
    }
  }

  vouch(): void {
    const vouched = this.whenVouched;
    this.whenVouched = undefined;
    vouched?.();
  }

  /** Arranges the flush at the end of this tick. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(this.flush);
  }

  /** The text written so far becomes the last of `small`, keeping the order of the writes. */
  private textToSmall(): void {
    this.small.push(Buffer.from(this.text, "latin1"));
    this.text = "";
  }

  /** Hands this tick's frames to the socket; true when a write of them carries `after` as its callback. */
  private handOver(after?: () => void): boolean {
    if (this.promised) {
      this.promised = false;
      if (this.handOverPromised()) return false;
    }
    if (this.text && this.small.length === 0 && this.socket.writableLength === 0) {
      // Only text this tick (publications, as a rule) for a socket holding nothing: it makes it
      // bytes itself, with no buffer of ours. A string kept in a socket's queue (its system buffer
      // full) survives young collections, 39 % of a publisher's time over a Unix socket: a buffer.
      const text = this.text;
      this.text = "";
      this.smallBytes = 0;
      if (this.socket.destroyed) return false;
      this.socket.write(text, "latin1", after);
      return after !== undefined;
    }
    if (this.small.length === 0 && !this.text) return false;
    const joined = this.takeQueued();
    if (this.socket.destroyed) return false;
    this.socket.write(joined, after);
    return after !== undefined;
  }

  /**
   * This tick's promised frames, written to the descriptor directly while the socket holds
   * nothing (the order holds): what the system does not take at once is handed to the socket
   * and stays `atRisk` until its write completes, so that an exit meanwhile still delivers it.
   * False when the socket holds something after all: the caller hands over as usual.
   */
  private handOverPromised(): boolean {
    const { fd, socket } = this;
    // Its write done (taken at once, its callback still to come): the socket holds none of it.
    if (this.atRisk && socket.writableLength === 0) this.atRisk = undefined;
    if (fd === undefined || socket.writableLength > 0 || socket.destroyed) {
      if (!this.atRisk) keptPromise(this);
      return false;
    }
    const bytes = this.takeQueued();
    let written = 0;
    try {
      written = writeSync(fd, bytes);
    } catch {
      // EAGAIN: the system takes nothing now; anything else the socket finds out itself.
    }
    if (written === bytes.length) {
      keptPromise(this);
      return true;
    }
    const rest = bytes.subarray(written);
    this.atRisk = rest;
    socket.write(rest, () => {
      if (this.atRisk !== rest) return;
      this.atRisk = undefined;
      if (!this.promised) keptPromise(this);
    });
    return true;
  }

  /** This tick's queued frames as one buffer, taken out of the queue. */
  private takeQueued(): Buffer {
    if (this.text) this.textToSmall();
    const bytes = this.small.length === 1 ? this.small[0]! : Buffer.concat(this.small, this.smallBytes);
    this.small = [];
    this.smallBytes = 0;
    return bytes;
  }

  get lendsChunks(): boolean {
    return this.slab !== undefined;
  }

  get queuedBytes(): number {
    return this.smallBytes + this.socket.writableLength;
  }

  close(graceMs = 1000): Promise<void> {
    const { socket } = this;
    // What this tick wrote leaves before the end.
    this.handOver();
    if (this.corked) {
      this.corked = false;
      socket.uncork();
    }
    if (socket.destroyed) {
      this.whenSent?.done();
      return Promise.resolve();
    }
    return new Promise((done) => {
      // A peer that never reads, or never answers our end with its own, must not hold the
      // socket open.
      const cut = setTimeout(() => socket.destroy(), graceMs).unref();
      // Everything is with the system, which delivers it even if this process exits now.
      socket.once("finish", () => {
        socket.unref();
        done();
      });
      socket.once("close", () => {
        clearTimeout(cut);
        this.whenSent?.done();
        done();
      });
      socket.end();
    });
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  start(onData: (chunk: Buffer) => void, onClose: (error?: Error) => void, onDrain?: () => void): void {
    let failure: Error | undefined;
    if (this.slab) this.slab.deliverTo(onData);
    else this.socket.on("data", onData);
    // A secured socket was read before (its handshake); a plain one may have been paused.
    this.socket.resume();
    this.socket.on("error", (error) => (failure = error));
    this.socket.on("close", () => onClose(failure));
    if (onDrain) this.socket.on("drain", onDrain);
    this.onDrain = onDrain;
  }

  destroy(): void {
    this.socket.destroy();
  }

  ref(): void {
    this.socket.ref();
  }

  unref(): void {
    this.socket.unref();
  }
}
