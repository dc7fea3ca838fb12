import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import net from "node:net";
import { NotTrustedError } from "../errors.js";
import { handshakeTimeout } from "../net/handshake-timeout.js";
import { ReadSlab } from "../net/read-slab.js";
import type { NetworkKey, OfferedKey } from "./network-key.js";
import { isLoopback } from "./own-address.js";

/**
 * A link between two processes of one host, in a network with a secret: each proves the secret
 * by an answer to the other's challenge, bound to the connection's two loopback addresses and
 * ports (or the name of the host's Unix socket it took: lib/net/local-sockets.ts), and frames then
 * travel as they do without a secret (docs/protocol.md#local-links).
 *
 * Why not TLS here: on loopback the kernel alone carries the bytes, and another user can neither
 * read nor inject them (root can, and has the secret anyway; so can a process with CAP_NET_RAW,
 * which is why `network.local_proof = false` keeps TLS: docs/security.md#local-links). TLS cost
 * a quarter of a lone call's round trip (docs/performance.md). What it still gives, proof of the
 * secret both ways, this does: HMAC-SHA256 under a key of its own from the secret, over fresh nonces of both
 * sides and the 4-tuple. The tuple is what a man in the middle cannot forward: a process that took
 * a dead server's port, or the router's, and relayed the challenges to the real one, would be
 * proving a connection other than its own.
 */
export const LOCAL_MAGIC = Buffer.from("LCL1", "latin1");
/** The server's answer to a key id it does not hold, before it closes. */
export const LOCAL_REFUSED = Buffer.from("LCLX", "latin1");
const NONCE = 32;
const KEY_ID = 8;
const MAC = 32;
/** magic, key id, client nonce */
const CHALLENGE = LOCAL_MAGIC.length + KEY_ID + NONCE;
/** magic, server nonce, server's proof */
const ANSWER = LOCAL_MAGIC.length + NONCE + MAC;

/** The connection as both sides write it: "client-address client-port server-address server-port". */
function binding(client: [string, number], server: [string, number]): string {
  const plain = (address: string) => address.replace(/^::ffff:/, "");
  return `${plain(client[0])} ${client[1]} ${plain(server[0])} ${server[1]}`;
}

/**
 * A connection over one of this host's Unix sockets as both sides write it: "unix" and the
 * socket's file name (lib/net/local-sockets.ts). A process that relayed the challenges from a
 * socket of its own to the real one would be proving another name, or a TCP tuple.
 */
export function socketBinding(name: string): string {
  return `unix ${name}`;
}

/** One side's proof: HMAC-SHA256 under the local key of "labc local 1 client " or "... server ", both nonces and the binding. */
export function localProof(localKey: Buffer, side: "client" | "server", clientNonce: Buffer, serverNonce: Buffer, tuple: string): Buffer {
  return createHmac("sha256", localKey).update(`labc local 1 ${side} `, "latin1").update(clientNonce).update(serverNonce).update(tuple, "latin1").digest();
}

function sameProof(given: Buffer, expected: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Whether both ends of `socket` are loopback addresses: a link between two processes of this host. */
export function onLoopback(socket: net.Socket): boolean {
  return isLoopback(socket.remoteAddress ?? "") && isLoopback(socket.localAddress ?? "");
}

/** Reads of a link's first bytes, handed out in parts of the lengths asked. */
class FirstBytes {
  private chunks: Buffer[] = [];
  private length = 0;
  private wanted: { bytes: number; take: (part: Buffer) => void } | null = null;

  readonly add = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.hand();
  };

  next(bytes: number): Promise<Buffer> {
    return new Promise((take) => {
      this.wanted = { bytes, take };
      this.hand();
    });
  }

  /** What came after the parts handed out (frames sent right after the proof). */
  rest(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }

  get received(): number {
    return this.length;
  }

  private hand(): void {
    const wanted = this.wanted;
    if (!wanted || this.length < wanted.bytes) return;
    this.wanted = null;
    const all = Buffer.concat(this.chunks, this.length);
    this.chunks = [all.subarray(wanted.bytes)];
    this.length -= wanted.bytes;
    wanted.take(all.subarray(0, wanted.bytes));
  }
}

/**
 * The accepting side, once the first read started with LOCAL_MAGIC: resolves null when the peer
 * proved the secret (the socket paused, what it sent after the proof put back to be read), or why
 * it is refused, and whether it was answered first (the caller closes it).
 */
export async function proveAccepted(
  raw: net.Socket,
  first: Buffer,
  key: NetworkKey,
  /** Why a key id that is not ours is refused (another secret, or one a rotation retired). */
  unknownKey: (keyId: string) => string,
  /** The name of this host's Unix socket `raw` was accepted on; undefined for TCP. */
  socketName?: string,
): Promise<{ why: string; answered: boolean } | null> {
  if (socketName === undefined && !onLoopback(raw)) {
    const from = raw.remoteAddress ?? "an address it no longer has (it closed)";
    return { why: `it offered the local proof from ${from}, not from this host's loopback: links from other hosts take TLS`, answered: false };
  }
  // Taken now: a socket that closes later has no addresses.
  const tuple = socketName !== undefined ? socketBinding(socketName) : binding([raw.remoteAddress!, raw.remotePort!], [raw.localAddress!, raw.localPort!]);
  const reads = new FirstBytes();
  reads.add(first);
  raw.on("data", reads.add);
  raw.resume();
  try {
    const challenge = await reads.next(CHALLENGE);
    if (!challenge.subarray(0, LOCAL_MAGIC.length).equals(LOCAL_MAGIC)) return { why: "it sent a malformed local proof", answered: false };
    const keyId = challenge.subarray(LOCAL_MAGIC.length, LOCAL_MAGIC.length + KEY_ID).toString("hex");
    const localKey = key.localKeyFor(keyId);
    if (!localKey) {
      raw.end(LOCAL_REFUSED);
      return { why: unknownKey(keyId), answered: true };
    }
    const clientNonce = challenge.subarray(LOCAL_MAGIC.length + KEY_ID);
    const serverNonce = randomBytes(NONCE);
    raw.write(Buffer.concat([LOCAL_MAGIC, serverNonce, localProof(localKey, "server", clientNonce, serverNonce, tuple)]));
    const given = await reads.next(MAC);
    if (!sameProof(given, localProof(localKey, "client", clientNonce, serverNonce, tuple))) {
      return { why: "its local proof of the network secret was wrong: it does not hold the secret", answered: false };
    }
    return null;
  } finally {
    raw.pause();
    raw.removeListener("data", reads.add);
    const rest = reads.rest();
    if (rest.length > 0) raw.unshift(rest);
  }
}

/** Where a process of this host takes connections: a loopback address and port, or one of its Unix sockets. */
export type LocalTarget = { host: string; port: number } | { path: string; name: string; where: string };

/**
 * Dials a process of this host (`to`) and proves `offered` to it (it proves it back, or the link
 * is refused): resolves with the socket and the slab it reads into. Rejects with the socket's own
 * error when nothing listens, NotTrustedError when a proof fails, and with `OlderPeer` when the
 * peer did not take the proof (a labc that takes TLS only).
 */
export function dialLocal(to: LocalTarget, offered: OfferedKey, timeoutMs: number, refusedKey: () => NotTrustedError): Promise<{ socket: net.Socket; slab: ReadSlab }> {
  return new Promise((resolve, reject) => {
    const where = "path" in to ? to.where : `${to.host}:${to.port}`;
    const slab = new ReadSlab();
    const reads = new FirstBytes();
    const socket = "path" in to ? net.connect({ path: to.path, onread: slab.options }) : net.connect({ host: to.host, port: to.port, onread: slab.options });
    let connected = false;
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      cancel();
      socket.destroy();
      reject(error);
    };
    const cancel = handshakeTimeout(timeoutMs, () => fail(Object.assign(new Error(`connect to ${where} timed out`), { code: "ETIMEDOUT" })));
    const failed = (error: NodeJS.ErrnoException) => {
      if (!connected) return fail(error);
      // Reset before a word: a peer that does not take the proof and closed on unread bytes.
      if (error.code === "ECONNRESET" && reads.received === 0) return fail(new OlderPeer(where));
      fail(new NotTrustedError(where, `the connection failed during the local proof (${error.message})`, error));
    };
    const closed = () => {
      const answer = reads.rest();
      if (answer.subarray(0, LOCAL_REFUSED.length).equals(LOCAL_REFUSED)) return fail(refusedKey());
      fail(notTheProof(answer) ? new OlderPeer(where) : new NotTrustedError(where, "closed the connection during the local proof: it has no network secret, or another one"));
    };
    socket.once("error", failed);
    socket.once("close", closed);
    socket.once("connect", async () => {
      connected = true;
      if (!("path" in to) && !onLoopback(socket)) return fail(new NotTrustedError(where, "is not on this host's loopback: the local proof is for links between processes of one host"));
      // Taken now: a socket that closes later has no addresses.
      const tuple = "path" in to ? socketBinding(to.name) : binding([socket.localAddress!, socket.localPort!], [socket.remoteAddress!, socket.remotePort!]);
      slab.deliverTo(reads.add);
      const clientNonce = randomBytes(NONCE);
      socket.write(Buffer.concat([LOCAL_MAGIC, Buffer.from(offered.id, "hex"), clientNonce]));
      const answer = await reads.next(ANSWER);
      if (settled) return;
      if (notTheProof(answer)) return fail(new OlderPeer(where));
      const serverNonce = answer.subarray(LOCAL_MAGIC.length, LOCAL_MAGIC.length + NONCE);
      if (!answer.subarray(0, LOCAL_MAGIC.length).equals(LOCAL_MAGIC) || !sameProof(answer.subarray(LOCAL_MAGIC.length + NONCE), localProof(offered.localKey, "server", clientNonce, serverNonce, tuple))) {
        return fail(new NotTrustedError(where, "its answer to the local proof was wrong: it does not hold the network secret"));
      }
      settled = true;
      cancel();
      socket.write(localProof(offered.localKey, "client", clientNonce, serverNonce, tuple));
      socket.removeListener("error", failed);
      socket.removeListener("close", closed);
      slab.takeBack(reads.rest());
      resolve({ socket, slab });
    });
  });
}

/**
 * Whether a server's answer is none of the proof's (nothing, or bytes not starting "LCL"): an
 * older labc read the challenge as a frame (and may have answered it as one).
 */
function notTheProof(answer: Buffer): boolean {
  return answer.length === 0 || answer[0] !== LOCAL_MAGIC[0] || answer[1] !== LOCAL_MAGIC[1] || answer[2] !== LOCAL_MAGIC[2];
}

/** A peer on loopback did not take the local proof (a labc from before it, or one set to TLS only): dial it with TLS. */
export class OlderPeer extends Error {
  constructor(readonly where: string) {
    super(`${where} did not take the local proof`);
  }
}
