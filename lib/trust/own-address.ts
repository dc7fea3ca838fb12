import { isIP } from "node:net";
import { networkInterfaces } from "node:os";

/** How long the list of this host's addresses is reused: interfaces come and go (DHCP, VPN). */
const REFRESH_MS = 5000;

let known = new Set<string>();
let readAt = 0;

function plain(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

/**
 * Whether `address` ("127.0.0.1", "::ffff:127.0.0.1", "::1", as the kernel reports a socket's or
 * a config names one) is a loopback address. Only an address: a host name, even "127.x.example",
 * is not one.
 */
export function isLoopback(address: string): boolean {
  const bare = plain(address);
  return isIP(bare) === 4 ? bare.startsWith("127.") : bare === "::1";
}

/**
 * What a transport accepted on, or dialed over, one of this host's Unix sockets says as its
 * remote end (lib/net/local-sockets.ts): a process of this host, which TCP would have shown as
 * 127.0.0.1.
 */
export const LOCAL_SOCKET = "local socket";

/** The peer's address in a transport's `remote` ("10.0.0.2:41234", "::1:41234", or LOCAL_SOCKET). */
export function addressOf(remote: string): string {
  return remote === LOCAL_SOCKET ? "127.0.0.1" : plain(remote.replace(/:\d+$/, ""));
}

/**
 * Whether a connection from `remote` ("10.0.0.2:41234") comes from a process of this host: from
 * a loopback address, one of this host's own interface addresses, or one of its Unix sockets.
 * The address is what the kernel says the peer connected from, not anything the peer claims.
 */
export function fromOwnHost(remote: string): boolean {
  const address = addressOf(remote);
  if (isLoopback(address)) return true;
  const now = Date.now();
  if (now - readAt > REFRESH_MS || !known.has(address)) {
    // Read again when stale, and before saying no: an address just added is not missed.
    if (now - readAt > 100) {
      known = new Set(Object.values(networkInterfaces()).flatMap((entries) => (entries ?? []).map((entry) => plain(entry.address))));
      readAt = now;
    }
  }
  return known.has(address);
}
