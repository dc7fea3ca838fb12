import net from "node:net";
import type { NetworkKey } from "../trust/network-key.js";
import { dialLocal, OlderPeer } from "../trust/local-proof.js";
import { isLoopback } from "../trust/own-address.js";
import { dialSecure, inKeyOrder, refusedKey } from "../trust/tls-link.js";
import { ReadSlab } from "./read-slab.js";
import { TcpTransport } from "./tcp-transport.js";

/**
 * Connects to `host:port`; with the network's `key`, over TLS (lib/trust/tls-link.ts), or with
 * the local proof when `host` is a loopback address (lib/trust/local-proof.ts), and a peer that
 * cannot prove the same secret is refused with NotTrustedError.
 */
export function connectTcp(host: string, port: number, timeoutMs = 2000, key?: NetworkKey): Promise<TcpTransport> {
  if (key?.localProof && isLoopback(host)) return connectLocal(host, port, timeoutMs, key);
  const slab = new ReadSlab();
  if (key) return dialSecure(host, port, key, timeoutMs, slab.options).then((socket) => new TcpTransport(socket, slab));
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, onread: slab.options });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: "ETIMEDOUT" }));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(new TcpTransport(socket, slab));
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * A process of this host, by the local proof; over TLS when it does not take the proof (a labc
 * from before it, or one with `network.local_proof = false`), which it says by not answering it.
 */
async function connectLocal(host: string, port: number, timeoutMs: number, key: NetworkKey): Promise<TcpTransport> {
  const where = `${host}:${port}`;
  try {
    const { socket, slab } = await inKeyOrder(key, (offered) => dialLocal(host, port, offered, timeoutMs, () => refusedKey(key, where, offered)));
    return new TcpTransport(socket, slab);
  } catch (error) {
    if (!(error instanceof OlderPeer)) throw error;
    const slab = new ReadSlab();
    return new TcpTransport(await dialSecure(host, port, key, timeoutMs, slab.options), slab);
  }
}
