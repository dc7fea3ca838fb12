import { createHmac, randomBytes } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
import { readFileSync } from "node:fs";

/**
 * A peer that speaks labc's frames by hand (docs/protocol.md), with its own socket and its own
 * encoder, and does what a careless or hostile peer does: never reads, sends half a frame,
 * lies about lengths, sends bodies of the wrong shape. Robustness tests and the attack
 * benchmarks use it; nothing here goes through labc's own client or codec.
 */

export const KIND = { hello: 1, req: 2, rep: 3, exc: 4, pub: 5, announce: 7, withdraw: 8, ping: 11, cancel: 13, item: 15, credit: 16 } as const;

/** One frame: u32 length, kind, flags, u16 blob count, u32 id, u32 JSON length, JSON. */
export function frameOf(kind: number, id: number, body: unknown): Buffer {
  const json = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  const head = Buffer.alloc(16);
  head.writeUInt32BE(12 + json.length, 0);
  head[4] = kind;
  head.writeUInt32BE(id, 8);
  head.writeUInt32BE(json.length, 12);
  return Buffer.concat([head, json]);
}

export function helloBody(role: "client" | "server" | "router", extra: Record<string, unknown> = {}) {
  return { v: 1, role, id: `hostile${process.pid}`, pid: process.pid, host: "hostile", hostId: "hostile", ...extra };
}

export interface Received {
  kind: number;
  id: number;
  body: any;
}

export class HostilePeer {
  readonly received: Received[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  private buffer: Buffer = Buffer.alloc(0);

  private constructor(readonly socket: net.Socket) {
    socket.on("error", () => {});
    this.closed = new Promise((done) => socket.once("close", () => ((this.isClosed = true), done())));
    socket.on("data", (chunk) => this.parse(chunk));
  }

  /** `localAddress`: where it connects from (another 127.x.y.z plays another host on loopback). */
  static connect(port: number, host = "127.0.0.1", localAddress?: string): Promise<HostilePeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) }, () => resolve(new HostilePeer(socket)));
      socket.once("error", reject);
    });
  }

  /**
   * Over TLS 1.3 with a pre-shared key of its own choosing (a stranger guessing, or a peer
   * holding an old secret): docs/protocol.md#secured-links says how labc's links do it.
   */
  static connectTls(port: number, host: string, psk: Buffer, identity: string): Promise<HostilePeer> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        port,
        host,
        minVersion: "TLSv1.3",
        ciphers: "TLS_AES_128_GCM_SHA256",
        pskCallback: () => ({ psk, identity }),
        checkServerIdentity: () => undefined,
      });
      socket.once("secureConnect", () => resolve(new HostilePeer(socket)));
      socket.once("error", reject);
    });
  }

  /**
   * On loopback with the local proof (docs/protocol.md#local-links), by hand: names `keyId` (16
   * hex digits) and proves itself with `key` (the secret's local-proof key, or a guess). Says
   * what the server answered, whether its proof was right for this connection, and the peer, its
   * own proof sent, unless the server refused or closed at once. `localAddress` as for `connect`.
   */
  static localProof(port: number, host: string, keyId: string, key: Buffer, localAddress?: string): Promise<{ answer: Buffer; serverProved: boolean; peer?: HostilePeer }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
      const nonce = randomBytes(32);
      let answer = Buffer.alloc(0);
      const proof = (side: string, serverNonce: Buffer) => {
        const tuple = `${socket.localAddress} ${socket.localPort} ${socket.remoteAddress} ${socket.remotePort}`;
        return createHmac("sha256", key).update(`labc local 1 ${side} `).update(nonce).update(serverNonce).update(tuple).digest();
      };
      socket.once("error", reject);
      socket.once("connect", () => socket.write(Buffer.concat([Buffer.from("LCL1"), Buffer.from(keyId, "hex"), nonce])));
      socket.once("close", () => resolve({ answer, serverProved: false }));
      const read = (chunk: Buffer) => {
        answer = Buffer.concat([answer, chunk]);
        if (answer.length < 68) return;
        socket.removeListener("data", read);
        socket.removeAllListeners("close");
        const serverNonce = answer.subarray(4, 36);
        const serverProved = proof("server", serverNonce).equals(answer.subarray(36, 68));
        socket.write(proof("client", serverNonce));
        resolve({ answer, serverProved, peer: new HostilePeer(socket) });
      };
      socket.on("data", read);
    });
  }

  /** Writes bytes; false when the socket's own buffer is full (the peer stopped reading). */
  send(bytes: Buffer): boolean {
    return this.socket.write(bytes);
  }

  hello(role: "client" | "server" | "router" = "client", extra: Record<string, unknown> = {}, id = 0): void {
    this.send(frameOf(KIND.hello, id, helloBody(role, extra)));
  }

  /** Stops reading what comes back (its kernel buffer fills, then the other side's). */
  stopReading(): void {
    this.socket.pause();
  }

  /** Resolves with the first frame received that matches, within `ms`. */
  async expect(match: (frame: Received) => boolean, ms = 3000): Promise<Received> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.received.find(match);
      if (found) return found;
      if (Date.now() > end) throw new Error(`no matching frame within ${ms} ms (got ${JSON.stringify(this.received.slice(-3))})`);
      await new Promise((done) => setTimeout(done, 10));
    }
  }

  /** Resolves true if the other side closed within `ms`. */
  closedWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), new Promise<boolean>((done) => setTimeout(() => done(false), ms))]);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private parse(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (this.buffer.length >= 4) {
      const length = this.buffer.readUInt32BE(0);
      if (this.buffer.length < 4 + length) return;
      const frame = this.buffer.subarray(4, 4 + length);
      this.buffer = this.buffer.subarray(4 + length);
      const jsonLength = frame.readUInt32BE(8);
      let body: unknown = null;
      try {
        body = JSON.parse(frame.toString("utf8", 12, 12 + jsonLength));
      } catch {
        // binary or broken: the kind and id still count
      }
      this.received.push({ kind: frame[0]!, id: frame.readUInt32BE(4), body });
    }
  }
}

/** Resident memory of a process, in MB (from /proc: the process may be another's child). */
export function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : NaN;
}
