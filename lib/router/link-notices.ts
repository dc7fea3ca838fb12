import { refused } from "../net/trips.js";
import { admitted, type Speaker } from "../pool/claims.js";
import { reachedThrough, type FunctionPool } from "../pool/function-pool.js";
import { Kind, type AnnounceBody, type Message, type ServerEntry, type SuspectBody, type WithdrawBody } from "../wire/message.js";

/** The host behind a router link, as far as its notices need it. */
export interface Speaking {
  hostId: string;
  name: string;
  /** Address the link runs over: what this host's processes use to reach its servers. */
  address: string | undefined;
}

export interface LinkNoticesParts {
  /** This router's host id. */
  self: string;
  pool: FunctionPool;
  /** Tells this host's processes about a change to the pool. */
  notify: (kind: Kind, body: object) => void;
  /** Whether a host is of this LAN (this one, or one linked). */
  isLanHost: (hostId: string) => boolean;
}

/**
 * What another host's router says of servers over its link (its pool, announce, withdraw,
 * suspect, a server's death), applied to this router's pool bound to the host behind the link:
 * its own servers, and (a gateway of this LAN) other sites' on hosts not of this LAN; never a
 * server whose id another host holds, never a function that does not leave its host.
 */
export class LinkNotices {
  constructor(private readonly parts: LinkNoticesParts) {}

  /** Applies a notice from `peer`; false when the message is not one of them. */
  apply(peer: Speaking, message: Message): boolean {
    const { pool, notify } = this.parts;
    switch (message.kind) {
      case Kind.pool:
        this.replaceServers(peer, message.body.servers);
        return true;
      case Kind.announce: {
        const body = message.body as AnnounceBody;
        if (!body.server || !this.admitted(peer, [body.server]).length) return true;
        const server = { ...body.server, address: peer.address! };
        pool.applyAnnounce({ server });
        notify(Kind.announce, { server });
        return true;
      }
      case Kind.withdraw: {
        const body = message.body as WithdrawBody;
        if (!this.speaksFor(peer, body.server)) return true;
        pool.applyWithdraw(body);
        notify(Kind.withdraw, body);
        return true;
      }
      case Kind.suspect: {
        const body = message.body as SuspectBody;
        if (this.speaksFor(peer, body.server) && pool.setSuspect(body.server, body.suspect)) notify(Kind.suspect, body);
        return true;
      }
      default:
        return false;
    }
  }

  /** A server of the link's host (or one it is the gateway to) stopped. */
  serverDied(peer: Speaking, serverId: string): void {
    if (!this.speaksFor(peer, serverId)) return;
    this.parts.pool.removeServer(serverId);
    this.parts.notify(Kind.death, { server: serverId });
  }

  /** A host's whole pool, sent on each new link to it (two routers that dialed each other at once send it twice). */
  private replaceServers(peer: Speaking, servers: ServerEntry[]): void {
    const entries = this.admitted(peer, servers).map((entry) => ({ ...entry, address: peer.address! }));
    const { pool } = this.parts;
    const owned = [...pool.servers.values()].filter((server) => reachedThrough(server) === peer.hostId);
    pool.replaceReached(owned, entries, this.parts.notify);
  }

  /** What the link's host may say of servers (lib/pool/claims.ts); the rest is refused, said once a minute per address. */
  private admitted(peer: Speaking, entries: ServerEntry[]): ServerEntry[] {
    const speaker: Speaker = {
      kind: "link",
      hostId: peer.hostId,
      self: this.parts.self,
      lanHost: this.parts.isLanHost,
      owns: (server) => reachedThrough(server) === peer.hostId,
    };
    const from = peer.address ?? peer.name;
    return admitted(entries, speaker, this.parts.pool, (why) => refused(from, `the router of ${peer.name} (${peer.hostId}) is not believed: ${why}`));
  }

  /** Whether a host may speak of this server: its own, or one of another site it is the gateway to. */
  private speaksFor(peer: Speaking, serverId: string | undefined): boolean {
    const server = this.parts.pool.servers.get(serverId ?? "");
    return server !== undefined && reachedThrough(server) === peer.hostId;
  }
}
