import {
  Kind,
  type AnnounceBody,
  type FunctionEntry,
  type Scope,
  type ServerEntry,
  type WithdrawBody,
} from "../wire/message.js";
import { parseSubscription, TopicTrie } from "./topic-trie.js";

/**
 * Where a resolution is made from. The perspective (`hostId`, `serverId`) decides where the
 * call's scope looks and what counts as local; the caller (`callerHostId`, `callerServerId`,
 * by default the same) decides which functions it may see at all.
 */
export interface Perspective {
  hostId: string;
  serverId?: string;
  callerHostId?: string;
  callerServerId?: string;
  /** The caller named the perspective's host (getHost): that host's private functions count. */
  named?: boolean;
  /** The caller's realm: it sees functions of this realm and of the realms above it. */
  realm?: string;
}

/** One server in the pool, with its functions and subscriptions indexed. */
export interface PoolServer {
  readonly id: string;
  readonly host: string;
  readonly hostId: string;
  readonly address: string;
  readonly port: number;
  readonly pid: number;
  readonly state: string | undefined;
  readonly realm: string;
  readonly functions: Map<string, FunctionEntry>;
  readonly topics: Set<string>;
  /** Its router has not heard from it lately: resolution avoids it while another answers. */
  suspect: boolean;
  /** On another site, reached through this host's router over the backplane (ServerEntry.gateway). */
  readonly gateway: string | undefined;
  /** It takes requests from NATS itself (ServerEntry.nats). */
  readonly nats: boolean;
}

/** A server's subscription in a queue group: each publication goes to one member of a group. */
export interface GroupMember {
  readonly server: PoolServer;
  readonly group: string;
}

export type Resolution = "bottom-up" | "random";

const SCOPE_RANK: Record<Scope, number> = { server: 0, host: 1, network: 2 };

/**
 * Every function and subscription known, by server. Routers keep the authoritative copy for
 * their host; callers keep a replica fed by the router's announce, withdraw and death notices.
 *
 * A function is visible to a call when it lies inside the call's scope (as seen from the
 * perspective) and the caller lies inside the function's own scope: a function registered
 * with scope "host" answers callers on its host, whatever scope they searched.
 */
/** Whether `server` offers `name` to a caller at `from` (its host and server as given), in `scope`. */
function offers(server: PoolServer, name: string, scope: Scope, from: Perspective, callerHostId: string, callerServerId: string | undefined): boolean {
  const entry = server.functions.get(name)!;
  const sameHost = server.hostId === callerHostId;
  if (entry.visibility === "secret") return false;
  if (entry.visibility === "local" && !sameHost) return false;
  if (entry.visibility === "private" && !sameHost && !(from.named && server.hostId === from.hostId)) return false;
  if (!inRealm(server.realm, from.realm ?? "")) return false;
  if (!within(server, scope, from.hostId, from.serverId)) return false;
  return within(server, entry.scope, callerHostId, callerServerId);
}

export class FunctionPool {
  readonly servers = new Map<string, PoolServer>();
  private readonly byName = new Map<string, Set<PoolServer>>();
  private readonly subscriptions = new TopicTrie<PoolServer>();
  private readonly groups = new TopicTrie<GroupMember>();
  /** Each server's group memberships by subscription key, to withdraw the same objects. */
  private readonly members = new WeakMap<PoolServer, Map<string, GroupMember>>();

  /** Adds a server, or returns the one with that id. */
  addServer(entry: Omit<ServerEntry, "functions" | "topics">): PoolServer {
    const known = this.servers.get(entry.id);
    if (known) return known;
    const server: PoolServer = {
      id: entry.id,
      host: entry.host,
      hostId: entry.hostId,
      address: entry.address,
      port: entry.port,
      pid: entry.pid,
      state: entry.state,
      realm: entry.realm ?? "",
      functions: new Map(),
      topics: new Set(),
      suspect: entry.suspect === true,
      gateway: entry.gateway,
      nats: entry.nats === true,
    };
    this.servers.set(server.id, server);
    return server;
  }

  announce(server: PoolServer, functions: FunctionEntry[] = [], topics: string[] = []): void {
    for (const entry of functions) {
      server.functions.set(entry.name, entry);
      let set = this.byName.get(entry.name);
      if (!set) this.byName.set(entry.name, (set = new Set()));
      set.add(server);
    }
    for (const topic of topics) {
      if (server.topics.has(topic)) continue;
      server.topics.add(topic);
      const { pattern, group } = parseSubscription(topic);
      if (group === undefined) {
        this.subscriptions.add(pattern, server);
        continue;
      }
      const member: GroupMember = { server, group };
      let mine = this.members.get(server);
      if (!mine) this.members.set(server, (mine = new Map()));
      mine.set(topic, member);
      this.groups.add(pattern, member);
    }
  }

  withdraw(server: PoolServer, functions: string[] = [], topics: string[] = []): void {
    for (const name of functions) {
      if (!server.functions.delete(name)) continue;
      const set = this.byName.get(name);
      set?.delete(server);
      if (set?.size === 0) this.byName.delete(name);
    }
    for (const topic of topics) {
      if (!server.topics.delete(topic)) continue;
      const { pattern, group } = parseSubscription(topic);
      if (group === undefined) {
        this.subscriptions.remove(pattern, server);
        continue;
      }
      const mine = this.members.get(server);
      this.groups.remove(pattern, mine?.get(topic)!);
      mine?.delete(topic);
    }
  }

  removeServer(id: string): PoolServer | undefined {
    const server = this.servers.get(id);
    if (!server) return undefined;
    this.withdraw(server, [...server.functions.keys()], [...server.topics]);
    this.servers.delete(id);
    return server;
  }

  clear(): void {
    for (const id of [...this.servers.keys()]) this.removeServer(id);
  }

  /** Removes every server reached through a host (its own, and other sites' when it is their gateway); returns them. */
  removeHost(hostId: string): PoolServer[] {
    const gone = [...this.servers.values()].filter((server) => reachedThrough(server) === hostId);
    for (const server of gone) this.removeServer(server.id);
    return gone;
  }

  /**
   * Makes the servers `owned` by someone (a linked host's, or a site's) be `entries`, its whole
   * pool as it sent it, telling `tell` only what changed: a server still listed at the same address is not
   * dead, and saying so would make processes drop their connections to it, with the calls in
   * flight on them.
   */
  replaceReached(owned: Iterable<PoolServer>, entries: ServerEntry[], tell: (kind: Kind, body: object) => void): void {
    const listed = new Map(entries.map((entry) => [entry.id, entry]));
    for (const known of [...owned]) {
      const entry = listed.get(known.id);
      if (!entry || known.address !== entry.address || known.gateway !== entry.gateway) {
        this.removeServer(known.id);
        tell(Kind.death, { server: known.id });
        continue;
      }
      if (this.setSuspect(known.id, entry.suspect === true)) tell(Kind.suspect, { server: known.id, suspect: entry.suspect === true });
      const names = new Set(entry.functions.map((f) => f.name));
      const functions = [...known.functions.keys()].filter((name) => !names.has(name));
      const topics = [...known.topics].filter((topic) => !entry.topics.includes(topic));
      if (functions.length || topics.length) {
        this.withdraw(known, functions, topics);
        tell(Kind.withdraw, { server: known.id, functions, topics });
      }
    }
    for (const entry of listed.values()) {
      const server = this.addServer(entry);
      this.announce(server, entry.functions, entry.topics);
      tell(Kind.announce, { server: entryOf(server) });
    }
  }

  /** Applies a router's announce notice (a new server or new entries of a known one). */
  applyAnnounce(body: AnnounceBody): void {
    if (!body.server) return;
    this.announce(this.addServer(body.server), body.server.functions, body.server.topics);
  }

  /** How many servers of a host the pool holds, and functions in all (`labc hosts`). */
  countOn(hostId: string): { servers: number; functions: number } {
    let servers = 0;
    let functions = 0;
    for (const server of this.servers.values()) {
      if (server.hostId !== hostId) continue;
      servers++;
      functions += server.functions.size;
    }
    return { servers, functions };
  }

  /** Marks a server suspect or well again; false when nothing changed. */
  setSuspect(id: string, suspect: boolean): boolean {
    const server = this.servers.get(id);
    if (!server || server.suspect === suspect) return false;
    server.suspect = suspect;
    return true;
  }

  applyWithdraw(body: WithdrawBody): void {
    const server = body.server === undefined ? undefined : this.servers.get(body.server);
    if (server) this.withdraw(server, body.functions, body.topics);
  }

  replaceWith(servers: ServerEntry[]): void {
    this.clear();
    for (const entry of servers) this.announce(this.addServer(entry), entry.functions, entry.topics);
  }

  snapshot(): ServerEntry[] {
    return [...this.servers.values()].map((server) => entryOf(server));
  }

  /** Every server that offers `name` to a caller at `from`, searching `scope`. */
  candidates(name: string, scope: Scope, from: Perspective): PoolServer[] {
    const set = this.byName.get(name);
    if (!set) return [];
    const out: PoolServer[] = [];
    const callerHostId = from.callerHostId ?? from.hostId;
    const callerServerId = from.callerServerId ?? from.serverId;
    for (const server of set) if (offers(server, name, scope, from, callerHostId, callerServerId)) out.push(server);
    return out;
  }

  /** Picks one server for `name`: the most local (random among equals), or any at random. */
  resolve(
    name: string,
    scope: Scope,
    from: Perspective,
    order: Resolution = "bottom-up",
    only?: (server: PoolServer) => boolean,
  ): PoolServer | undefined {
    const set = this.byName.get(name);
    if (set?.size === 1 && !only) {
      // The common case, one server offers it: no array of candidates per call.
      const [server] = set;
      return offers(server!, name, scope, from, from.callerHostId ?? from.hostId, from.callerServerId ?? from.serverId) ? server : undefined;
    }
    const all = this.candidates(name, scope, from);
    let found = only ? all.filter(only) : all;
    // A frozen server answers nothing: any other is better, but it is better than none.
    if (found.length > 1 && found.some((server) => server.suspect)) {
      const well = found.filter((server) => !server.suspect);
      if (well.length) found = well;
    }
    if (found.length <= 1 || order === "random") return pick(found);
    let best = 4;
    for (const server of found) best = Math.min(best, locality(server, from));
    return pick(found.filter((server) => locality(server, from) === best));
  }

  /** Servers holding a subscription that matches `topic` (do not modify the array). */
  subscribers(topic: string): readonly PoolServer[] {
    return this.subscriptions.matches(topic);
  }

  /** Queue-group subscriptions that match `topic`, of every group (do not modify the array). */
  groupMembers(topic: string): readonly GroupMember[] {
    return this.groups.matches(topic);
  }
}

function within(server: PoolServer, scope: Scope, hostId: string, serverId: string | undefined): boolean {
  if (SCOPE_RANK[scope] >= SCOPE_RANK.network) return true;
  if (server.hostId !== hostId) return false;
  return scope === "host" || server.id === serverId;
}

/** A function's realm is the caller's or one above it; "" is above every realm. */
export function inRealm(functionRealm: string, callerRealm: string): boolean {
  return functionRealm === "" || callerRealm === functionRealm || callerRealm.startsWith(`${functionRealm}.`);
}

/** This server, this host, this LAN, then other sites: a call crosses the backplane only when its LAN cannot answer. */
export function locality(server: PoolServer, from: Perspective): number {
  if (server.id === from.serverId) return 0;
  if (server.hostId === from.hostId) return 1;
  return server.gateway === undefined ? 2 : 3;
}

/** The host whose router passes on what is for this server: its own, or its gateway on this LAN. */
export function reachedThrough(server: { hostId: string; gateway?: string | undefined }): string {
  return server.gateway ?? server.hostId;
}

function pick<T>(items: T[]): T | undefined {
  return items.length <= 1 ? items[0] : items[Math.floor(Math.random() * items.length)];
}

export function entryOf(server: PoolServer): ServerEntry {
  return {
    id: server.id,
    host: server.host,
    hostId: server.hostId,
    address: server.address,
    port: server.port,
    pid: server.pid,
    state: server.state,
    realm: server.realm || undefined,
    ...(server.suspect ? { suspect: true } : {}),
    ...(server.gateway === undefined ? {} : { gateway: server.gateway }),
    ...(server.nats ? { nats: true } : {}),
    functions: [...server.functions.values()],
    topics: [...server.topics],
  };
}
