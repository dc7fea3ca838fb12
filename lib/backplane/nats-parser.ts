/** What a NATS server sends a client, cut into its operations (a NatsLink's reading side). */

/** What a NATS server says of itself when a client connects (the fields read here). */
export interface ServerInfo {
  max_payload?: number;
  tls_required?: boolean;
  auth_required?: boolean;
  nonce?: string;
}

/** The longest control line read: a subject is far shorter; anything longer is not NATS. */
export const MAX_LINE = 64 * 1024;

/** What the parser hands each operation to (the link it reads for), and what it reads of it. */
export interface ServerOps {
  /** The link ended: nothing more is read. */
  stopped(): boolean;
  /** The server's max_payload as last said: a message of over twice that is not NATS's. */
  maxPayload(): number;
  /** A MSG or HMSG on subscription `sid`; `payload` is null for NATS's "no responders". */
  message(sid: number, subject: string, reply: string | undefined, payload: Buffer | null): void;
  ping(): void;
  pong(): void;
  info(info: ServerInfo): void;
  /** A -ERR, with the server's reason. */
  error(why: string): void;
  /** What came is not NATS: the link ends with `why`. */
  fail(why: string): void;
}

interface Incoming {
  subject: string;
  sid: number;
  reply: string | undefined;
  headerBytes: number;
  totalBytes: number;
}

const EMPTY: Buffer = Buffer.alloc(0);
const CRLF = Buffer.from("\r\n");

/**
 * Fed the server's bytes as they come, cut anywhere: control lines and the payloads of MSG and
 * HMSG (whose declared length is checked from the line, before its bytes are waited for).
 */
export class NatsParser {
  private rest: Buffer = EMPTY;
  private incoming: Incoming | null = null;

  constructor(private readonly ops: ServerOps) {}

  feed(chunk: Buffer): void {
    const buffer = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    let at = 0;
    while (!this.ops.stopped()) {
      const incoming = this.incoming;
      if (incoming) {
        if (buffer.length - at < incoming.totalBytes + 2) break;
        const headers = incoming.headerBytes ? buffer.toString("latin1", at, at + incoming.headerBytes) : "";
        const payload = buffer.subarray(at + incoming.headerBytes, at + incoming.totalBytes);
        at += incoming.totalBytes + 2;
        this.incoming = null;
        // A status of 503 is NATS saying that nobody subscribes to where a request went.
        this.ops.message(incoming.sid, incoming.subject, incoming.reply, /^NATS\/1\.0 503/.test(headers) ? null : payload);
        continue;
      }
      const end = buffer.indexOf(CRLF, at);
      if (end < 0) {
        if (buffer.length - at > MAX_LINE) this.ops.fail("a line longer than any NATS control line");
        break;
      }
      const line = buffer.toString("latin1", at, end);
      at = end + 2;
      this.control(line);
    }
    this.rest = at >= buffer.length ? EMPTY : buffer.subarray(at);
  }

  private control(line: string): void {
    const words = line.split(" ");
    switch (words[0]!.toUpperCase()) {
      case "MSG":
      case "HMSG": {
        // MSG <subject> <sid> [reply] <bytes>; HMSG <subject> <sid> [reply] <header bytes> <bytes>
        const headed = words[0]!.toUpperCase() === "HMSG";
        const counts = headed ? 2 : 1;
        const totalBytes = Number(words.at(-1));
        const headerBytes = headed ? Number(words.at(-2)) : 0;
        const reply = words.length === 4 + counts ? words[3] : undefined;
        const sid = Number(words[2]);
        if (words.length < 3 + counts || !(totalBytes >= headerBytes && headerBytes >= 0) || totalBytes > 2 * this.ops.maxPayload() || !Number.isInteger(totalBytes)) {
          return this.ops.fail(`a message line that is not NATS's: ${line.slice(0, 80)}`);
        }
        this.incoming = { subject: words[1]!, sid, reply, headerBytes, totalBytes };
        return;
      }
      case "PING":
        return this.ops.ping();
      case "PONG":
        return this.ops.pong();
      case "+OK":
        return;
      case "INFO":
        try {
          this.ops.info(JSON.parse(line.slice(5)) as ServerInfo);
        } catch {
          this.ops.fail("an INFO that is not JSON");
        }
        return;
      case "-ERR":
        return this.ops.error(line.slice(5).replace(/^'|'$/g, ""));
      default:
        this.ops.fail(`an unknown operation: ${line.slice(0, 80)}`);
    }
  }
}
