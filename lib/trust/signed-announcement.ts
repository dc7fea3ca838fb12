import { isIPv4 } from "node:net";
import { debug, warn } from "../log.js";
import { refused } from "../net/trips.js";
import { PROTOCOL_VERSION } from "../wire/message.js";
import type { NetworkKey } from "./network-key.js";

/** What a host announces of itself (a UDP beacon, an mDNS TXT record), with its signature. */
export interface Announcement {
  hostId: string;
  name: string;
  port: number;
  /** The IPv4 addresses its router listens on: with a network key, the only ones a router dials. */
  addresses: string[];
  /** When it was signed (ms since the epoch, the sender's clock). */
  t?: number;
  /** The MAC of the fields above under the network key (network-key.ts). */
  mac?: string;
}

/** At most this many addresses in an announcement (a host lists those of its chosen interfaces). */
export const MAX_ADDRESSES = 32;
/** Host ids and names are at most this long. */
const MAX_TEXT = 255;
/** No field may hold a line break or another control character: see signedText. */
const CONTROL = /[\p{Cc}\u2028\u2029]/u;

/**
 * What is wrong with an announcement's fields, or undefined. Checked on every announcement
 * received, before its MAC: what a router acts on has exactly the shape that was signed.
 */
export function announcementProblem(a: Partial<Announcement>): string | undefined {
  const text = (value: unknown, min: number) =>
    typeof value === "string" && value.length >= min && value.length <= MAX_TEXT && !CONTROL.test(value);
  if (!text(a.hostId, 1)) return "a host id that is not 1 to 255 characters without control characters";
  if (!text(a.name, 0)) return "a name that is not up to 255 characters without control characters";
  if (!Number.isInteger(a.port) || a.port! < 1 || a.port! > 65535) return "a port that is not a number from 1 to 65535";
  const { addresses } = a;
  if (!Array.isArray(addresses) || addresses.length > MAX_ADDRESSES || !addresses.every((x) => typeof x === "string" && isIPv4(x))) {
    return `addresses that are not a list of at most ${MAX_ADDRESSES} IPv4 addresses`;
  }
  if (a.t !== undefined && (!Number.isSafeInteger(a.t) || a.t < 0)) return "a signing time that is not a whole number of ms since the epoch";
  if (a.mac !== undefined && typeof a.mac !== "string") return "a MAC that is not text";
  return undefined;
}

/**
 * The text the MAC covers (docs/protocol.md#announcements): every field a router acts on, one a
 * line. No field can hold a line break (announcementProblem), and the addresses are dotted
 * quads joined by commas, so each text has exactly one reading. The first line names the
 * version of this text: version 1 left the addresses out.
 */
export function signedText(a: Announcement): string {
  return ["labc announcement 2", PROTOCOL_VERSION, a.hostId, a.name, a.port, a.addresses.join(","), a.t].join("\n");
}

/** Version 1's text, only to tell an older labc from a forgery in the refusal's log line. */
function signedTextV1(a: Announcement): string {
  return `labc announcement\n${a.hostId}\n${a.name}\n${a.port}\n${a.t}`;
}

/** Says at start when this host's own announcements will be ignored by every other host. */
export function warnIfUnannounceable(self: { hostId: string; name: string; port: number }, method: string): void {
  const problem = announcementProblem({ ...self, addresses: [] });
  if (problem) warn(`${method}: this host's announcements have ${problem} (host.name, host.id, router.port): other hosts will ignore them`);
}

/** Signs an announcement in place (with a key: in an open network it goes unsigned). */
export function sign<A extends Announcement>(announcement: A, key: NetworkKey | undefined, now = Date.now()): A {
  if (!key) return announcement;
  announcement.t = now;
  announcement.mac = key.mac(signedText(announcement));
  return announcement;
}

/**
 * Decides which announcements a router acts on, and where it dials their host. With a network
 * key: only those signed with it, and from each host only ones signed after the last one taken
 * (a recorded announcement played again is older); optionally only those signed within
 * `maxAgeMs` of now. Their host is dialed at the addresses they were signed over, never at one a
 * packet merely came from. In an open network: only unsigned ones (a signed one belongs to a
 * network with a secret, which this host is not in), dialed as they say.
 *
 * An announcement makes a router try to connect, nothing more: the connection proves the secret
 * again (TLS).
 */
export class AnnouncementCheck {
  private readonly latest = new Map<string, number>();

  constructor(
    private readonly key: NetworkKey | undefined,
    private readonly options: { maxAgeMs?: number; /** A repeat of the latest is taken (mDNS repeats its record). */ repeats: boolean },
  ) {}

  accept(announcement: Announcement, from: string, now = Date.now()): boolean {
    const { key } = this;
    const problem = announcementProblem(announcement);
    if (problem) {
      // The fields are not quoted: they are a stranger's bytes.
      if (key) refused(from, `an announcement with ${problem}`);
      else debug("announcement from %s ignored: %s", from, problem);
      return false;
    }
    if (!key) return announcement.mac === undefined;
    const { hostId, t, mac } = announcement;
    if (typeof mac !== "string" || t === undefined || !key.verify(signedText(announcement), mac)) {
      const older = typeof mac === "string" && t !== undefined && key.verify(signedTextV1(announcement), mac);
      const retiredAt = typeof mac === "string" && t !== undefined ? key.retiredAt(signedText(announcement), mac) : undefined;
      refused(
        from,
        older
          ? `an announcement of host ${hostId} signed by an older labc, whose signature leaves out the addresses: update labc on that host`
          : retiredAt !== undefined
            ? `an announcement of host ${hostId} signed with the network's previous secret (replaced by key id ${key.id} at ${new Date(retiredAt).toISOString()}): it missed the rotation; run \`labc invite\` on a member and \`labc join --force\` on ${hostId}`
            : `an announcement of host ${hostId} not signed with this network's key (key id ${key.id})`,
      );
      return false;
    }
    const { maxAgeMs } = this.options;
    if (maxAgeMs !== undefined && Math.abs(now - t) > maxAgeMs) {
      refused(from, `an announcement of host ${hostId} signed ${Math.round(Math.abs(now - t) / 1000)} s ${now >= t ? "ago" : "ahead of this host's clock"} (clocks more than ${maxAgeMs / 1000} s apart, or a replay)`);
      return false;
    }
    const last = this.latest.get(hostId) ?? -Infinity;
    if (t < last || (t === last && !this.options.repeats)) return false;
    if (this.latest.size > 10_000) this.latest.clear();
    this.latest.set(hostId, t);
    return true;
  }

  /**
   * Where to dial the host of an announcement taken. With a key: the addresses it was signed
   * over only, the packet's `source` first when it is one of them (it surely routes). In an open
   * network, as before: `source` first, then the `unsigned` addresses the announcement's
   * transport gives (a beacon's list, mDNS A records).
   */
  dialable(announcement: Announcement, source: string | undefined, unsigned: readonly string[] = announcement.addresses): string[] {
    const given = this.key ? announcement.addresses : unsigned;
    const first = source !== undefined && (!this.key || given.includes(source)) ? [source] : [];
    return [...new Set([...first, ...given])];
  }
}
