import net from "node:net";
import type { NetworkKey } from "../trust/network-key.js";
import { dialLocal, OlderPeer, type LocalTarget } from "../trust/local-proof.js";
import { isLoopback, LOCAL_SOCKET } from "../trust/own-address.js";
import { dialSecure, inKeyOrder, refusedKey } from "../trust/tls-link.js";
import { handshakeTimeout } from "./handshake-timeout.js";
import type { LocalSockets } from "./local-sockets.js";
import { ReadSlab } from "./read-slab.js";
import { TcpTransport } from "./tcp-transport.js";

/**
 * Connects to `host:port`; with the network's `key`, over TLS (lib/trust/tls-link.ts), or with
 * the local proof when `host` is a loopback address (lib/trust/local-proof.ts), and a peer that
 * cannot prove the same secret is refused with NotTrustedError. With this host's `local` sockets,
 * 127.0.0.1:`port` is reached over its Unix socket when one answers (lib/net/local-sockets.ts),
 * unless the key keeps TLS on loopback (`network.local_proof = false`).
 */
export function connectTcp(host: string, port: number, timeoutMs = 2000, key?: NetworkKey, local?: LocalSockets): Promise<TcpTransport> {
  if (local && host === "127.0.0.1" && (!key || key.localProof) && local.ours(port)) {
    return connectSocket(local, port, timeoutMs, key).catch((error) => {
      // Nobody there (a socket left by a killed process), a backlog full, or a process of this
      // host that takes TCP only: TCP reaches the same process, and says the rest.
      if (!(error instanceof OlderPeer) && !SOCKET_UNUSED.has((error as NodeJS.ErrnoException).code!)) throw error;
      return connectTcp(host, port, timeoutMs, key);
    });
  }
  if (key?.localProof && isLoopback(host)) return connectLocal({ host, port }, timeoutMs, key);
  if (key) {
    const slab = new ReadSlab();
    return dialSecure(host, port, key, timeoutMs, slab.options).then((socket) => new TcpTransport(socket, slab));
  }
  return dialPlain({ host, port }, `${host}:${port}`, timeoutMs);
}

/** How a Unix socket's connect fails when it cannot be used now (EAGAIN: its backlog is full, where TCP would wait). */
const SOCKET_UNUSED = new Set(["ENOENT", "ECONNREFUSED", "EAGAIN", "EACCES", "EPERM", "ENOTSOCK", "ENOTDIR"]);

/** 127.0.0.1:`port` over this host's Unix socket for it. */
function connectSocket(local: LocalSockets, port: number, timeoutMs: number, key: NetworkKey | undefined): Promise<TcpTransport> {
  const path = local.pathFor(port);
  const where = `127.0.0.1:${port} (${LOCAL_SOCKET} ${local.shownFor(port)})`;
  if (key) return connectLocal({ path, name: local.nameFor(port), where }, timeoutMs, key);
  return dialPlain({ path }, where, timeoutMs, LOCAL_SOCKET);
}

/** A connection without a secret, to an address or a Unix socket. */
function dialPlain(to: net.NetConnectOpts, where: string, timeoutMs: number, remote?: string): Promise<TcpTransport> {
  const slab = new ReadSlab();
  return new Promise((resolve, reject) => {
    const socket = net.connect({ ...to, onread: slab.options });
    const cancel = handshakeTimeout(timeoutMs, () => {
      socket.destroy();
      reject(Object.assign(new Error(`connect to ${where} timed out`), { code: "ETIMEDOUT" }));
    });
    socket.once("connect", () => {
      cancel();
      socket.removeAllListeners("error");
      resolve(new TcpTransport(socket, slab, remote));
    });
    socket.once("error", (error) => {
      cancel();
      reject(error);
    });
  });
}

/**
 * A process of this host, by the local proof; over TLS when it does not take the proof (a labc
 * from before it, or one with `network.local_proof = false`), which it says by not answering it.
 */
async function connectLocal(to: LocalTarget, timeoutMs: number, key: NetworkKey): Promise<TcpTransport> {
  const where = "path" in to ? to.where : `${to.host}:${to.port}`;
  try {
    const { socket, slab } = await inKeyOrder(key, (offered) => dialLocal(to, offered, timeoutMs, () => refusedKey(key, where, offered)));
    return new TcpTransport(socket, slab, "path" in to ? LOCAL_SOCKET : undefined);
  } catch (error) {
    // Over a Unix socket, connectTcp takes TCP next.
    if (!(error instanceof OlderPeer) || "path" in to) throw error;
    const slab = new ReadSlab();
    return new TcpTransport(await dialSecure(to.host, to.port, key, timeoutMs, slab.options), slab);
  }
}
