import { debug, warn } from "../log.js";

/** How often one peer's trips are logged at most: a flood must not become a flood of logs. */
const LOG_EVERY_MS = 60_000;

const counts = new Map<string, number>();
const lastLogged = new Map<string, number>();

/**
 * A limit tripped on a peer's connection (or a peer sent something refused): counted, and said
 * in the log once per peer and minute. `peer` is the address the peer connects from. A `pause`
 * (reading stopped until the peer catches up) is ordinary flow control, also for well-behaved
 * peers moving large data: it is counted and shown with NODE_DEBUG=labc only.
 */
export function tripped(limit: string, peer: string, detail: string, pause = false): void {
  counts.set(limit, (counts.get(limit) ?? 0) + 1);
  if (pause) return debug("%s tripped by %s: %s", limit, peer, detail);
  const address = addressOf(peer);
  if (firstThisMinute(address)) {
    warn(`${limit} tripped by ${address}: ${detail} (further trips by ${address} are counted, not logged, for a minute)`);
  }
}

/**
 * A peer was refused because it is not a member of the network (it lacks the secret, or is not
 * on this host where only processes of this host may be): counted as `refused`, and said once
 * per peer and minute, with why.
 */
export function refused(peer: string, why: string): void {
  counts.set("refused", (counts.get("refused") ?? 0) + 1);
  const address = addressOf(peer);
  if (firstThisMinute(`refused ${address}`)) {
    warn(`refused ${address}: ${why} (further refusals of ${address} are counted, not logged, for a minute)`);
  }
}

function addressOf(peer: string): string {
  return peer.replace(/:\d+$/, "").replace(/^::ffff:/, "");
}

function firstThisMinute(key: string): boolean {
  const now = Date.now();
  const last = lastLogged.get(key);
  if (last !== undefined && now - last < LOG_EVERY_MS) return false;
  if (lastLogged.size > 10_000) lastLogged.clear();
  lastLogged.set(key, now);
  return true;
}

/** How often each limit tripped in this process, by name (as in config's [limits]), and `refused`. */
export function tripCounts(): Record<string, number> {
  return Object.fromEntries(counts);
}
