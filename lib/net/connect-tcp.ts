import net from "node:net";
import type { NetworkKey } from "../trust/network-key.js";
import { dialSecure } from "../trust/tls-link.js";
import { ReadSlab } from "./read-slab.js";
import { TcpTransport } from "./tcp-transport.js";

/**
 * Connects to `host:port`; with the network's `key`, over TLS (lib/trust/tls-link.ts), and a
 * peer that cannot prove the same secret is refused with NotTrustedError.
 */
export function connectTcp(host: string, port: number, timeoutMs = 2000, key?: NetworkKey): Promise<TcpTransport> {
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
