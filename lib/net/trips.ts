import { debug, peerText, warn } from "../log.js";

/** How often one peer's trips (or refusals) are logged at most: a flood must not become a flood of logs. */
const LOG_EVERY_MS = 60_000;
/**
 * And all peers together: at most this many trip and refusal lines at once, and this many more
 * a minute. Forged beacons, or connections from a whole subnet, come from many addresses, one
 * line each otherwise; what is held back is counted and said in one summary line.
 */
const LINES_AT_ONCE = 20;
const LINES_A_MINUTE = 20;
/** How long after the first line held back its summary comes. */
const SUMMARY_AFTER_MS = 10_000;
/** What a line quotes of a peer's words at most (they may be unauthenticated, and 60 kB long). */
const DETAIL_MAX = 300;
/** Addresses a summary tells apart; past these it says "at least". */
const MAX_ADDRESSES = 10_000;

const counts = new Map<string, number>();
const lastLogged = new Map<string, number>();

let lines = LINES_AT_ONCE;
let linesCountedAt = Date.now();

interface HeldBack {
  since: number;
  refusals: number;
  trips: number;
  addresses: Set<string>;
}
let heldBack: HeldBack | null = null;

/**
 * A limit tripped on a peer's connection (or a peer sent something refused): counted, and said
 * in the log once per peer and minute, within the log's budget. `peer` is the address the peer
 * connects from. A `pause` (reading stopped until the peer catches up) is ordinary flow control,
 * also for well-behaved peers moving large data: it is counted and shown with NODE_DEBUG=labc
 * only. `detail` may quote the peer: it is escaped and cut.
 */
export function tripped(limit: string, peer: string, detail: string, pause = false): void {
  counts.set(limit, (counts.get(limit) ?? 0) + 1);
  if (pause) return debug("%s tripped by %s: %s", limit, peer, detail);
  const address = addressOf(peer);
  say("trips", address, address, () => `${limit} tripped by ${address}: ${peerText(detail, DETAIL_MAX)} (further trips by ${address} are counted, not logged, for a minute)`);
}

/**
 * A peer was refused because it is not a member of the network (it lacks the secret, or is not
 * on this host where only processes of this host may be): counted as `refused`, and said once
 * per peer and minute, with why, within the log's budget. `why` may quote what the peer claimed
 * (a host id, a key id): it is escaped and cut here, whoever calls.
 */
export function refused(peer: string, why: string): void {
  counts.set("refused", (counts.get("refused") ?? 0) + 1);
  const address = addressOf(peer);
  say("refusals", `refused ${address}`, address, () => `refused ${address}: ${peerText(why, DETAIL_MAX)} (further refusals of ${address} are counted, not logged, for a minute)`);
}

/** A peer's address as a line shows it: without the port, escaped (it is the kernel's, but this costs nothing). */
function addressOf(peer: string): string {
  return peerText(peer.replace(/:\d+$/, "").replace(/^::ffff:/, ""), 100);
}

/**
 * Logs `line` when this address has not been said this minute and the log's budget has a line
 * left; else, once lines were held back for lack of budget, counts it for the summary.
 */
function say(kind: "refusals" | "trips", key: string, address: string, line: () => string): void {
  const now = Date.now();
  const first = firstThisMinute(key, now);
  if (first && budgetLeft(now)) return warn(line());
  // Refusals of one address within its minute are not news (its line said so), unless lines
  // are held back anyway: then the summary counts everything that was not logged.
  if (!first && !heldBack) return;
  if (!heldBack) {
    heldBack = { since: now, refusals: 0, trips: 0, addresses: new Set() };
    setTimeout(summarize, SUMMARY_AFTER_MS).unref();
  }
  heldBack[kind]++;
  if (heldBack.addresses.size < MAX_ADDRESSES) heldBack.addresses.add(address);
}

/** A token bucket: LINES_AT_ONCE lines, refilled at LINES_A_MINUTE a minute. */
function budgetLeft(now: number): boolean {
  lines = Math.min(LINES_AT_ONCE, lines + ((now - linesCountedAt) * LINES_A_MINUTE) / 60_000);
  linesCountedAt = now;
  if (lines < 1) return false;
  lines--;
  return true;
}

function summarize(): void {
  const held = heldBack;
  heldBack = null;
  if (!held) return;
  const what = [held.refusals ? `${held.refusals} refusal(s)` : "", held.trips ? `${held.trips} tripped limit(s)` : ""].filter(Boolean).join(" and ");
  const many = held.addresses.size >= MAX_ADDRESSES ? "at least " : "";
  const some = [...held.addresses].slice(0, 3).join(", ");
  warn(
    `${what} from ${many}${held.addresses.size} address(es) (${some}${held.addresses.size > 3 ? ", ..." : ""}) in the last ${Math.round((Date.now() - held.since) / 1000)} s` +
      ` were counted, not logged: at most ${LINES_A_MINUTE} such lines a minute are (labc.stats counts them all)`,
  );
}

function firstThisMinute(key: string, now: number): boolean {
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
