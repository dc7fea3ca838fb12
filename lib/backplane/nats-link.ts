import { readFileSync } from "node:fs";
import net from "node:net";
import { nowMs } from "../clock.js";
import type { BackplaneSettings } from "../config.js";
import { ConfigError, LimitError } from "../errors.js";
import { handshakeTimeout } from "../net/handshake-timeout.js";
import { nodeTls } from "../net/node-tls.js";
import { MAX_LINE, NatsParser, type ServerInfo } from "./nats-parser.js";
import { NatsPipe, type PipeLink } from "./nats-pipe.js";
import { Subjects } from "./subjects.js";

/**
 * A process's own link to the backplane's NATS server, for calls between sites that skip both
 * gateways (docs/backplane.md#direct-calls): a caller on a gateway's host sends its frames to
 * the server's subject, and that server answers on the caller's. It speaks the NATS client
 * protocol itself, and only the part needed here, rather than through nats.js: a script must
 * be able to end once its calls are answered, and nats.js keeps its socket and ping timer
 * referenced for as long as it is connected. What it lacks (`.creds` logins, reconnecting)
 * is left to the gateways: a process that cannot link calls through its router, as before.
 */

/** A message on a subscribed subject; `payload` is null for NATS's "no responders". */
type Handler = (subject: string, reply: string | undefined, payload: Buffer | null) => void;

interface Batch {
  subject: string;
  reply: string | undefined;
  parts: Buffer[];
  bytes: number;
}

const EMPTY: Buffer = Buffer.alloc(0);
const CRLF = Buffer.from("\r\n");
/** A server-side pipe nobody wrote to or through for this long is closed (the caller is gone). */
const IDLE_MS = 5 * 60_000;
/** Pipes a server keeps at most: past it, the one idle longest is closed. */
const MAX_PIPES = 4096;

/** Connects to the first NATS server of `settings` that takes us, within `timeoutMs` each. */
export async function linkToNats(settings: BackplaneSettings, name: string, timeoutMs: number): Promise<NatsLink> {
  if (settings.creds) throw new Error("a .creds login is for the gateways only (backplane.creds)");
  let failure: unknown;
  for (const server of settings.servers) {
    try {
      return await connectOne(server, settings, name, timeoutMs);
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

async function connectOne(server: string, settings: BackplaneSettings, name: string, timeoutMs: number): Promise<NatsLink> {
  const url = new URL(server.includes("://") ? server : `nats://${server}`);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 4222);
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  // Its errors end it, and are read where they matter: the handshake's steps, then the link.
  socket.on("error", () => {});
  const cancel = handshakeTimeout(timeoutMs, () => socket.destroy(new Error(`no answer from NATS at ${host}:${port} within ${timeoutMs} ms`)));
  try {
    const info = JSON.parse((await firstLine(socket)).replace(/^INFO\s+/i, "")) as ServerInfo;
    let stream: net.Socket = socket;
    const { caFile, certFile, keyFile } = settings.tls ?? {};
    if (info.tls_required || url.protocol === "tls:" || caFile || certFile) {
      const read = (file: string | undefined, key: string) => {
        if (!file) return undefined;
        try {
          return readFileSync(file);
        } catch (error) {
          throw new ConfigError(file, key, `cannot read it: ${(error as Error).message}`);
        }
      };
      const secured = nodeTls().connect({
        socket,
        servername: net.isIP(host) ? undefined : host,
        ca: read(caFile, "backplane.tls_ca"),
        cert: read(certFile, "backplane.tls_cert"),
        key: read(keyFile, "backplane.tls_key"),
      });
      await new Promise<void>((done, fail) => secured.once("secureConnect", done).once("error", fail));
      stream = secured;
    }
    const user = settings.user ?? (url.username ? decodeURIComponent(url.username) : undefined);
    const pass = settings.pass ?? (url.password ? decodeURIComponent(url.password) : undefined);
    // Answers come under the realm's prefix too: a login limited to it still gets them.
    const link = new NatsLink(stream, info, `${new Subjects(settings.realm).prefix}.inbox.${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`);
    await link.login({ user, pass, auth_token: settings.token, name });
    return link;
  } catch (error) {
    socket.destroy();
    throw error;
  } finally {
    cancel();
  }
}

/** The INFO line a NATS server starts with; nothing else is read before TLS or CONNECT. */
function firstLine(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = EMPTY;
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const end = seen.indexOf(CRLF);
      if (end < 0 && seen.length < MAX_LINE) return;
      socket.off("data", onData).off("error", reject).off("close", onClose);
      socket.pause();
      if (end < 0 || !/^INFO\s/i.test(seen.toString("latin1", 0, 5))) return reject(new Error("the server did not speak NATS"));
      resolve(seen.toString("utf8", 0, end));
    };
    const onClose = () => reject(new Error("NATS closed the connection"));
    socket.on("data", onData).once("error", reject).once("close", onClose);
  });
}

export class NatsLink implements PipeLink {
  closed = false;
  private inboxSid = 0;
  private inboxTaken: Promise<void> | undefined;
  private readonly opened = new Map<string, NatsPipe>();
  private lastToken = 0;
  private readonly handlers = new Map<number, Handler>();
  private lastSid = 0;
  private readonly batches = new Map<string, Batch>();
  private batchedBytes = 0;
  private scheduled = false;
  private pongs: { done: () => void; fail: (error: Error) => void }[] = [];
  private refs = 0;
  private readonly pipes = new Set<NatsPipe>();
  private readonly onClose: ((error?: Error) => void)[] = [];
  private maxPayload: number;
  /** The last permissions NATS refused this login ("Permissions Violation for Subscription to ..."). */
  private denied: string[] = [];

  constructor(
    private readonly socket: net.Socket,
    info: ServerInfo,
    /** Subjects answers come to: `<inbox>.<token>`, one token per pipe this process opened. */
    private readonly inbox: string,
  ) {
    this.maxPayload = info.max_payload ?? 1024 * 1024;
    const parser = new NatsParser({
      stopped: () => this.closed,
      maxPayload: () => this.maxPayload,
      message: (sid, subject, reply, payload) => this.handlers.get(sid)?.(subject, reply, payload),
      ping: () => void socket.write("PONG\r\n"),
      pong: () => this.pongs.shift()?.done(),
      info: (info) => {
        this.maxPayload = info.max_payload ?? this.maxPayload;
      },
      error: (why) => this.refused(why),
      fail: (why) => this.fail(why),
    });
    socket.on("data", (chunk: Buffer) => parser.feed(chunk));
    socket.on("drain", () => {
      for (const pipe of this.pipes) pipe.drained();
    });
    socket.on("error", (error) => this.end(error));
    socket.on("close", () => this.end(new Error("NATS closed the connection")));
    socket.resume();
    // Only what waits for NATS (a PING's answer, a pipe's request) keeps the process alive.
    socket.unref();
  }

  /** Says who we are, and settles once NATS took it (a refused login rejects with its reason). */
  login(credentials: { user?: string | undefined; pass?: string | undefined; auth_token?: string | undefined; name: string }): Promise<void> {
    const connect = { verbose: false, pedantic: false, lang: "labc", version: "1", protocol: 1, headers: true, no_responders: true, ...credentials };
    this.socket.write(`CONNECT ${JSON.stringify(connect)}\r\n`);
    return this.ping();
  }

  /** Settles once NATS answered a PING: everything sent before it was processed. */
  ping(): Promise<void> {
    if (this.closed) return Promise.reject(new Error("NATS link closed"));
    this.flush();
    this.socket.write("PING\r\n");
    this.hold(1);
    return new Promise<void>((done, fail) => this.pongs.push({ done, fail })).finally(() => this.hold(-1));
  }

  /** Runs `handler` when the link ends, with why. */
  closing(handler: (error?: Error) => void): void {
    this.onClose.push(handler);
  }

  /**
   * A pipe to the process answering on `subject`; its answers come back to it alone. The first
   * one waits until NATS took the subscription for the answers: a login that may not have it
   * sends nothing (its calls go through the gateway).
   */
  async open(subject: string): Promise<NatsPipe> {
    if (this.inboxSid === 0) {
      this.inboxSid = this.subscribe(`${this.inbox}.*`, (answeredOn, _reply, payload) => this.answered(answeredOn, payload));
      this.inboxTaken = this.taken(this.inboxSid, `${this.inbox}.*`);
    }
    await this.inboxTaken;
    const token = (++this.lastToken).toString(36);
    const pipe = new NatsPipe(this, subject, `${this.inbox}.${token}`, () => this.opened.delete(token));
    this.opened.set(token, pipe);
    return pipe;
  }

  private answered(subject: string, payload: Buffer | null): void {
    const pipe = this.opened.get(subject.slice(this.inbox.length + 1));
    if (!pipe) return;
    if (payload) return pipe.receive(payload);
    pipe.end(new Error(`nobody answers on NATS subject ${pipe.to}`));
  }

  /**
   * Takes what comes on `subject`: each caller (its reply subject) gets a pipe of its own,
   * handed to `onPipe` before its first bytes. Resolves once NATS has the subscription; the
   * function returned ends it.
   */
  async serve(subject: string, onPipe: (pipe: NatsPipe, first: Buffer) => void): Promise<() => void> {
    const served = new Map<string, NatsPipe>();
    const sid = this.subscribe(subject, (_subject, reply, payload) => {
      if (!reply || !payload) return;
      let pipe = served.get(reply);
      if (pipe) {
        // Most recently used last: the first is the one to close when there are too many.
        served.delete(reply);
        served.set(reply, pipe);
      } else {
        if (served.size >= MAX_PIPES) served.values().next().value!.end(new LimitError("pipes", `over ${MAX_PIPES} callers on ${subject}`));
        pipe = new NatsPipe(this, reply, undefined, () => served.delete(reply));
        served.set(reply, pipe);
        onPipe(pipe, payload);
      }
      pipe.receive(payload);
    });
    await this.taken(sid, subject);
    const sweep = setInterval(() => {
      const now = nowMs();
      for (const pipe of served.values()) if (now - pipe.activeAt > IDLE_MS && !pipe.busy()) pipe.end();
    }, IDLE_MS / 5).unref();
    return () => {
      clearInterval(sweep);
      this.unsubscribe(sid);
    };
  }

  /** Settles once NATS has subscription `sid`; rejects (and drops it) when NATS refused it. */
  private async taken(sid: number, subject: string): Promise<void> {
    await this.ping();
    // NATS refuses a subscription by an error of its own, before the PING's answer.
    const refusal = this.denied.find((why) => why.includes(`"${subject}"`));
    if (refusal) {
      this.unsubscribe(sid);
      throw new Error(`NATS: ${refusal}`);
    }
  }

  subscribe(subject: string, handler: Handler): number {
    const sid = ++this.lastSid;
    this.handlers.set(sid, handler);
    this.flush();
    this.socket.write(`SUB ${subject} ${sid}\r\n`);
    return sid;
  }

  unsubscribe(sid: number): void {
    if (!this.handlers.delete(sid) || this.closed) return;
    this.flush();
    this.socket.write(`UNSUB ${sid}\r\n`);
  }

  /**
   * Queues bytes for `subject`: everything written to one subject (and reply subject) in one
   * tick leaves as one NATS message, or as several of at most the server's max_payload. The
   * pipes carry a stream of frames, so a frame may be cut anywhere.
   */
  publish(subject: string, reply: string | undefined, data: Buffer | Buffer[]): void {
    if (this.closed) return;
    const key = reply === undefined ? subject : `${subject} ${reply}`;
    let batch = this.batches.get(key);
    if (!batch) this.batches.set(key, (batch = { subject, reply, parts: [], bytes: 0 }));
    for (const part of Array.isArray(data) ? data : [data]) {
      batch.parts.push(part);
      batch.bytes += part.length;
      this.batchedBytes += part.length;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flush);
    }
  }

  private readonly flush = () => {
    this.scheduled = false;
    if (this.batches.size === 0 || this.closed) return;
    const out: Buffer[] = [];
    for (const { subject, reply, parts, bytes } of this.batches.values()) {
      const joined = parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
      for (let at = 0; at < bytes; at += this.maxPayload) {
        const piece = joined.subarray(at, Math.min(bytes, at + this.maxPayload));
        out.push(Buffer.from(`PUB ${subject}${reply === undefined ? "" : ` ${reply}`} ${piece.length}\r\n`), piece, CRLF);
      }
    }
    this.batches.clear();
    this.batchedBytes = 0;
    // One writev for all of it, without copying the payloads once more.
    this.socket.cork();
    for (const part of out) this.socket.write(part);
    this.socket.uncork();
  };

  get queuedBytes(): number {
    return this.batchedBytes + this.socket.writableLength;
  }

  /** A pipe wants the process kept alive (a request of its waits), or no longer. */
  hold(change: 1 | -1): void {
    this.refs += change;
    // Once closing, `close` holds the process until the socket is closed.
    if (this.closed) return;
    if (this.refs > 0) this.socket.ref();
    else this.socket.unref();
  }

  track(pipe: NatsPipe, open: boolean): void {
    if (open) this.pipes.add(pipe);
    else this.pipes.delete(pipe);
  }

  /** Sends what is queued and closes; resolves once it left, or after `graceMs`. */
  close(graceMs = 1000): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.flush();
    this.end(undefined);
    const { socket } = this;
    // Awaited: the process stays until what was queued left.
    socket.ref();
    return new Promise<void>((done) => {
      const cut = setTimeout(() => socket.destroy(), graceMs).unref();
      socket.once("close", () => {
        clearTimeout(cut);
        done();
      });
      socket.end();
    });
  }

  /** Resolves once what was queued so far is with the system (a pipe closing). */
  flushed(graceMs: number): Promise<void> {
    this.flush();
    if (this.closed || this.socket.writableLength === 0) return Promise.resolve();
    this.hold(1);
    return new Promise<void>((done) => {
      const cut = setTimeout(done, graceMs).unref();
      this.socket.write(EMPTY, () => {
        clearTimeout(cut);
        done();
      });
    }).finally(() => this.hold(-1));
  }

  private end(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.unref();
    for (const pong of this.pongs.splice(0)) pong.fail(error ?? new Error("NATS link closed"));
    for (const pipe of [...this.pipes]) pipe.end(error);
    for (const handler of this.onClose.splice(0)) handler(error);
    if (error) this.socket.destroy();
  }

  private fail(why: string): void {
    this.end(new Error(`NATS sent ${why}`));
  }

  /** A -ERR of NATS. */
  private refused(why: string): void {
    // A subject this login may not use: the rest of the link is fine.
    if (/permissions violation/i.test(why)) {
      this.denied = [...this.denied.slice(-7), why];
      // What this login may not publish reached nobody: the pipes sending there end (a dial's
      // ping fails with it, and the calls go through the gateways).
      const subject = /Publish to "([^"]+)"/i.exec(why)?.[1];
      for (const pipe of this.opened.values()) {
        if (pipe.to === subject) pipe.end(new Error(`NATS: ${why}`));
      }
      return;
    }
    this.end(new Error(`NATS: ${why}`));
  }
}
