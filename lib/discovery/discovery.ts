import { networkInterfaces } from "node:os";

/** Another host seen on the network, by any method. */
export interface Sighting {
  /** Unknown when only an address is known (a static peer). */
  hostId?: string;
  name?: string;
  /** Addresses to try, the most likely to answer first. */
  addresses: string[];
  /** Its root port. */
  port: number;
  via: "mdns" | "udp" | "static" | "known";
}

/** What this host tells the others about itself. */
export interface OwnHost {
  hostId: string;
  name: string;
  port: number;
}

/** One way of finding other hosts. Every method (mdns, udp, static, known) has this shape. */
export interface Discovery {
  readonly method: Sighting["via"];
  start(found: (sighting: Sighting) => void): void;
  stop(): void;
}

export interface InterfaceAddress {
  name: string;
  address: string;
  broadcast: string;
}

function broadcastOf(address: string, netmask: string): string {
  const a = address.split(".").map(Number);
  const m = netmask.split(".").map(Number);
  return a.map((byte, i) => (byte | (~m[i]! & 255)) >>> 0).join(".");
}

/**
 * The IPv4 addresses discovery may use: every non-internal one, or those whose interface name
 * or address is listed in `only` (which may name the loopback interface on purpose).
 */
export function interfaceAddresses(only: readonly string[] = []): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const [name, entries] of Object.entries(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.family !== "IPv4") continue;
      const listed = only.includes(name) || only.includes(entry.address);
      if (only.length ? !listed : entry.internal) continue;
      out.push({ name, address: entry.address, broadcast: broadcastOf(entry.address, entry.netmask) });
    }
  }
  return out;
}
