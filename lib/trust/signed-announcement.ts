import { refused } from "../net/trips.js";
import type { NetworkKey } from "./network-key.js";

/** What a host announces of itself (a UDP beacon, an mDNS TXT record), with its signature. */
export interface Announcement {
  hostId: string;
  name: string;
  port: number;
  /** When it was signed (ms since the epoch, the sender's clock). */
  t?: number;
  /** The MAC of the fields above under the network key (network-key.ts). */
  mac?: string;
}

function signedText(announcement: Announcement): string {
  const { hostId, name, port, t } = announcement;
  return `labc announcement\n${hostId}\n${name}\n${port}\n${t}`;
}

/** Signs an announcement in place (with a key: in an open network it goes unsigned). */
export function sign<A extends Announcement>(announcement: A, key: NetworkKey | undefined, now = Date.now()): A {
  if (!key) return announcement;
  announcement.t = now;
  announcement.mac = key.mac(signedText(announcement));
  return announcement;
}

/**
 * Decides which announcements a router acts on. With a network key: only those signed with it,
 * and from each host only ones signed after the last one taken (a recorded announcement played
 * again is older); optionally only those signed within `maxAgeMs` of now. In an open network:
 * only unsigned ones (a signed one belongs to a network with a secret, which this host is not in).
 *
 * An announcement makes a router try to connect, nothing more: the connection proves the secret
 * again (TLS), so a forgery that got through could cost a failed connection, not trust.
 */
export class AnnouncementCheck {
  private readonly latest = new Map<string, number>();

  constructor(
    private readonly key: NetworkKey | undefined,
    private readonly options: { maxAgeMs?: number; /** A repeat of the latest is taken (mDNS repeats its record). */ repeats: boolean },
  ) {}

  accept(announcement: Announcement, from: string, now = Date.now()): boolean {
    const { key } = this;
    if (!key) return announcement.mac === undefined;
    const { t, mac } = announcement;
    if (typeof mac !== "string" || typeof t !== "number" || !key.verify(signedText(announcement), mac)) {
      refused(from, `an announcement of host ${String(announcement.hostId)} not signed with this network's key (key id ${key.id})`);
      return false;
    }
    const { maxAgeMs } = this.options;
    if (maxAgeMs !== undefined && Math.abs(now - t) > maxAgeMs) {
      refused(from, `an announcement of host ${announcement.hostId} signed ${Math.round((now - t) / 1000)} s from now (clocks more than ${maxAgeMs / 1000} s apart, or a replay)`);
      return false;
    }
    const last = this.latest.get(announcement.hostId) ?? -Infinity;
    if (t < last || (t === last && !this.options.repeats)) return false;
    if (this.latest.size > 10_000) this.latest.clear();
    this.latest.set(announcement.hostId, t);
    return true;
  }
}
