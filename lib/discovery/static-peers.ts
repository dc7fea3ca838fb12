import { lookup } from "node:dns/promises";
import { debug } from "../log.js";
import type { Discovery, Sighting } from "./discovery.js";

/** Parses "name", "address" or "address:port" (IPv6 in brackets: "[::1]:6000"). */
export function parsePeer(peer: string, defaultPort: number): { host: string; port: number } {
  const match = /^\[(.+)\](?::(\d+))?$/.exec(peer) ?? /^([^:]+)(?::(\d+))?$/.exec(peer);
  if (!match) return { host: peer, port: defaultPort };
  return { host: match[1]!, port: match[2] ? Number(match[2]) : defaultPort };
}

/** Hosts named in the config (`discovery.peers`), for networks where nothing else finds them. */
export class StaticPeers implements Discovery {
  readonly method = "static" as const;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly peers: readonly string[],
    private readonly options: { defaultPort: number; intervalMs: number },
  ) {}

  start(found: (sighting: Sighting) => void): void {
    const sight = async () => {
      for (const peer of this.peers) {
        const { host, port } = parsePeer(peer, this.options.defaultPort);
        try {
          const addresses = (await lookup(host, { all: true, family: 4 })).map((entry) => entry.address);
          found({ addresses, port, via: "static" });
        } catch (error) {
          debug("static peer %s: %s", peer, (error as Error).message);
        }
      }
    };
    void sight();
    this.timer = setInterval(sight, this.options.intervalMs).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
