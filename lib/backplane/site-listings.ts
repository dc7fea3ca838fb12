import { debug } from "../log.js";
import { refused } from "../net/trips.js";
import type { FunctionPool } from "../pool/function-pool.js";
import { admitted, type Speaker } from "../pool/claims.js";
import { Kind, type ServerEntry } from "../wire/message.js";
import { problemWith } from "../wire/validate.js";

/** What a gateway knows of the other sites on the backplane: their listings, their beats, their hosts. */

export interface SiteHost {
  hostId: string;
  name: string;
}

/** What a gateway says on its site subject: every beat, and with its servers on each change. */
export interface SiteNews {
  hostId: string;
  name: string;
  instance: string;
  version: number;
  servers?: ServerEntry[];
  hosts?: SiteHost[];
  bye?: boolean;
}

interface Site {
  hostId: string;
  name: string;
  instance: string;
  /** The newest version of its servers said, and the one applied here. */
  version: number;
  applied: number;
  hosts: SiteHost[];
  /** Ids of its servers in the pool. */
  servers: Set<string>;
  lastHeard: number;
  suspect: boolean;
  /** A version its beats said that is not applied here, and when its listing was asked for. */
  behind: number;
  askedAt: number;
}

const SUSPECT_AFTER = 2;
const DEAD_AFTER = 4;

export interface SiteListingsOptions {
  /** This gateway's host id. */
  self: string;
  /** The router's pool: other sites' servers are kept there, marked with this host as gateway. */
  pool: FunctionPool;
  /** Whether a host id is one of this LAN's (this host, or one linked to it): no other site speaks for it. */
  lanHost: (hostId: string) => boolean;
  /** Tells this host's processes and this LAN's routers a change to other sites' servers. */
  tell: (kind: Kind, body: object) => void;
  /** Milliseconds between the gateways' beats. */
  heartbeatMs: number;
  /** Asks the gateway of site `hostId` for its listing; it comes back to `heard`. */
  ask: (hostId: string) => void;
}

/**
 * The other sites as this gateway heard them: each site's servers are kept in the pool (marked
 * as reached through this gateway) at the newest version of its listing heard, once its claims
 * are checked; a site silent for two beats is suspect, for four gone.
 */
export class SiteListings {
  private readonly sites = new Map<string, Site>();
  /** Which site (its gateway's host id) each server of another site belongs to. */
  private readonly siteOfServer = new Map<string, string>();

  constructor(private readonly options: SiteListingsOptions) {}

  /** How many other sites are heard. */
  get size(): number {
    return this.sites.size;
  }

  /** The site (its gateway's host id) of a server of another site. */
  siteOf(serverId: string): string | undefined {
    return this.siteOfServer.get(serverId);
  }

  /** Other sites' hosts, with their gateway's name, for `labc hosts`. */
  hosts(): { hostId: string; name: string; site: string; suspect: boolean; lastHeardMs: number }[] {
    const out = [];
    const now = Date.now();
    for (const site of this.sites.values()) {
      for (const host of site.hosts) out.push({ ...host, site: site.name, suspect: site.suspect, lastHeardMs: now - site.lastHeard });
    }
    return out;
  }

  /** What a gateway said on its site subject (a beat, a listing or a bye), or answered. */
  heard(news: SiteNews): void {
    if (typeof news?.hostId !== "string" || !Number.isInteger(news.version) || news.hostId === this.options.self) return;
    let site = this.sites.get(news.hostId);
    if (news.bye) {
      if (site) this.drop(site, "left the backplane");
      return;
    }
    if (!site || site.instance !== news.instance) {
      if (site) this.drop(site, "restarted");
      site = { hostId: news.hostId, name: news.name, instance: news.instance, version: 0, applied: -1, hosts: [], servers: new Set(), lastHeard: 0, suspect: false, behind: -1, askedAt: 0 };
      this.sites.set(site.hostId, site);
      debug("backplane: site of %s (%s) is on the backplane", site.name, site.hostId);
    }
    site.lastHeard = Date.now();
    site.version = Math.max(site.version, news.version);
    if (site.suspect) this.setSuspect(site, false);
    if (news.servers && news.version > site.applied) this.apply(site, news);
    else if (site.version > site.applied) this.ask(site);
  }

  /** Every beat: each other site judged by how long ago it was heard. */
  judge(): void {
    const { heartbeatMs } = this.options;
    const now = Date.now();
    for (const site of this.sites.values()) {
      const silent = now - site.lastHeard;
      if (silent > heartbeatMs * DEAD_AFTER) this.drop(site, `silent for ${silent} ms`);
      else if (silent > heartbeatMs * SUSPECT_AFTER && !site.suspect) this.setSuspect(site, true);
    }
  }

  /** Forgets every site (NATS lost): they return as they are heard. */
  dropAll(why: string): void {
    for (const site of [...this.sites.values()]) this.drop(site, why);
  }

  /**
   * Asks a site for its listing (it comes to the gateway's `replies`, as greetings' answers
   * do): once its beats said twice a version not applied here. A listing said to all is
   * usually on its way when the first such beat comes.
   */
  private ask(site: Site): void {
    if (site.behind !== site.version) {
      site.behind = site.version;
      return;
    }
    const now = Date.now();
    if (now - site.askedAt < this.options.heartbeatMs) return;
    site.askedAt = now;
    this.options.ask(site.hostId);
  }

  /** A site's servers, as it listed them: this LAN's processes and routers are told what changed. */
  private apply(site: Site, news: SiteNews): void {
    const { pool, self, tell } = this.options;
    site.applied = news.version;
    site.hosts = (Array.isArray(news.hosts) ? news.hosts : []).filter(
      (host) => typeof host?.hostId === "string" && typeof host.name === "string" && !this.options.lanHost(host.hostId),
    );
    // Another site speaks for its own hosts only, offers only what crosses between hosts, and
    // takes no id held here: an entry that does otherwise is dropped and said once a minute,
    // the rest of its listing kept (a host carried from that site to this LAN is still listed
    // there for a while, and is no reason to lose the whole site).
    const speaker: Speaker = {
      kind: "site",
      hostId: site.hostId,
      self,
      lanHost: this.options.lanHost,
      owns: (server) => server.gateway === self && this.siteOfServer.get(server.id) === site.hostId,
    };
    const wellFormed = (Array.isArray(news.servers) ? news.servers : []).filter((entry) => !problemWith(Kind.announce, { server: entry }));
    const believed = admitted(wellFormed, speaker, pool, (why) => refused(`site ${site.hostId} on NATS`, `its listing is not believed: ${why}`));
    const entries = believed.map((entry) => ({ ...entry, gateway: self, suspect: site.suspect || entry.suspect === true }));
    const owned = [...site.servers].flatMap((id) => pool.servers.get(id) ?? []);
    pool.replaceReached(owned, entries, tell);
    for (const id of site.servers) this.siteOfServer.delete(id);
    site.servers = new Set(entries.map((entry) => entry.id));
    for (const id of site.servers) this.siteOfServer.set(id, site.hostId);
    debug("backplane: site of %s has %d servers", site.name, entries.length);
  }

  private drop(site: Site, why: string): void {
    this.sites.delete(site.hostId);
    for (const id of site.servers) {
      this.siteOfServer.delete(id);
      if (this.options.pool.removeServer(id)) this.options.tell(Kind.death, { server: id });
    }
    debug("backplane: site of %s (%s) gone: %s", site.name, site.hostId, why);
  }

  private setSuspect(site: Site, suspect: boolean): void {
    site.suspect = suspect;
    for (const id of site.servers) {
      if (this.options.pool.setSuspect(id, suspect)) this.options.tell(Kind.suspect, { server: id, suspect });
    }
  }
}
