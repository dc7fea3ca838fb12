import net from "node:net";
import type { NetworkKey } from "../trust/network-key.js";
import type { Listener } from "./transport.js";
import { LOCAL_SOCKET } from "../trust/own-address.js";
import { secureAccepted } from "../trust/tls-link.js";
import type { LocalSockets } from "./local-sockets.js";
import { TcpTransport } from "./tcp-transport.js";
import { tripped } from "./trips.js";

export interface ListenOptions {
  /**
   * At most this many connections from one address are open at once that have not proved
   * themselves yet (said hello, or completed the handshake with the network's key): past it, the
   * oldest such one is closed. A flood of idle connections is cut, never the host's own processes,
   * which say hello at once (a host may run thousands of them).
   */
  maxPerAddress?: number;
  /** The network's key: each connection must complete a TLS handshake with it first. */
  key?: NetworkKey;
  /** How long that handshake may take. */
  handshakeTimeoutMs?: number;
  /**
   * This host's Unix sockets: a listener that takes connections on 127.0.0.1 takes them on the
   * socket for its port too (lib/net/local-sockets.ts), unless the key keeps TLS on loopback.
   */
  local?: LocalSockets;
}

/** The addresses whose listener surely takes connections on 127.0.0.1 (`::` does only where IPv6 sockets are not IPv6-only). */
const TAKES_LOOPBACK = new Set(["0.0.0.0", "127.0.0.1"]);

/** Listens on `host:port`; each accepted (and, with a key, secured) connection becomes a transport. */
export function listenTcp(
  host: string,
  port: number,
  onTransport: (transport: TcpTransport) => void,
  { maxPerAddress = Infinity, key, handshakeTimeoutMs = 10_000, local }: ListenOptions = {},
): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const sockets = new Set<net.Socket>();
    /** Connections not proved yet, by address, oldest first. */
    const unproved = new Map<string, Set<net.Socket>>();
    const proved = (address: string, socket: net.Socket) => {
      const set = unproved.get(address);
      if (set?.delete(socket) && set.size === 0) unproved.delete(address);
    };
    /** A connection on the port, or (counted as one address) on its Unix socket `onSocket`. */
    const accept = (socket: net.Socket, onSocket?: { name: string; port: number }) => {
      const address = onSocket === undefined ? (socket.remoteAddress ?? "?") : LOCAL_SOCKET;
      let waiting = unproved.get(address);
      if (!waiting) unproved.set(address, (waiting = new Set()));
      if (waiting.size >= maxPerAddress) {
        const [oldest] = waiting;
        tripped("connections_per_address", address, `${waiting.size} connections from it have not said hello: the oldest was closed`);
        proved(address, oldest!);
        oldest!.destroy();
        waiting = unproved.get(address) ?? unproved.set(address, new Set()).get(address)!;
      }
      waiting.add(socket);
      sockets.add(socket);
      socket.once("close", () => {
        sockets.delete(socket);
        proved(address, socket);
      });
      const remote = onSocket === undefined ? undefined : LOCAL_SOCKET;
      if (!key) {
        const transport = new TcpTransport(socket, undefined, remote);
        transport.whenVouched = () => proved(address, socket);
        return onTransport(transport);
      }
      void secureAccepted(socket, key, handshakeTimeoutMs, onSocket).then((secured) => {
        // The handshake proved the network's key.
        proved(address, socket);
        if (secured && !secured.destroyed) onTransport(new TcpTransport(secured, undefined, remote));
      });
    };
    const server = net.createServer((socket) => accept(socket));
    server.once("error", reject);
    server.listen({ host, port, exclusive: true }, async () => {
      server.removeListener("error", reject);
      server.on("error", () => {});
      const taken = (server.address() as net.AddressInfo).port;
      const named = local && { name: local.nameFor(taken), port: taken };
      const onSocket = named && TAKES_LOOPBACK.has(host) && (!key || key.localProof) ? await local.listen(taken, (socket) => accept(socket, named)).catch(() => undefined) : undefined;
      resolve({
        port: taken,
        refuse: () => {
          onSocket?.close();
          server.close();
        },
        close: () =>
          new Promise<void>((done) => {
            onSocket?.close();
            if (server.listening) server.close(() => done());
            else done();
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}

