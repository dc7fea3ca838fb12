// What a process publishes: subscribers, queue-group turns, other sites, reqpub.
import { NoSuchFunctionError } from "../errors.js";
import { hooks } from "../hooks.js";
import type { Identity } from "../identity.js";
import { debug } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { Limits } from "../wire/limits.js";
import type { GroupMember, PoolServer } from "../pool/function-pool.js";
import { checkTopic } from "../pool/topic-trie.js";
import type { Server } from "../server.js";
import { encodePublication } from "../wire/codec.js";
import { publicationFrame } from "../wire/frame-text.js";
import { REQPUB, type Scope } from "../wire/message.js";
import { committed } from "../net/transport.js";
import type { Calls } from "./calls.js";
import type { RouterLink } from "./router-link.js";
import { describe, type ServerLinks } from "./server-links.js";

const NO_CHOICE = new Map<PoolServer, string[]>();
/** Settled promises of small counts of servers reached: a publication that left at once needs no promise of its own. */
const REACHED = Array.from({ length: 64 }, (_, n) => Promise.resolve(n));
const reachedNow = (n: number) => REACHED[n] ?? Promise.resolve(n);
const NO_GROUPS: string[] = [];

/** The same promises in the same order. */
function sameWaits(a: readonly Promise<void>[], b: readonly Promise<void>[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface PublicationsParts {
  identity: Identity;
  limits: Limits;
  metrics: Metrics | undefined;
  link: RouterLink;
  links: ServerLinks;
  calls: Calls;
  /** The server of this process, once it serves. */
  server: () => Server | undefined;
  defaultScope: Scope;
  defaultTimeoutMs: number;
}

/**
 * What this process publishes: to the subscribers the pool replica lists (this process's own run
 * here), one member of each queue group in turn, the other sites once per gateway; `reqpub`, whose
 * nearest subscriber answers. Each server is sent to on the route ServerLinks gives.
 */
export class Publications {
  /** Publications still finding their subscribers: `close()` waits for them. */
  private readonly publishing = new Set<Promise<number>>();
  /** Publications each queue group has had from here: its members take turns. */
  private readonly groupTurns = new Map<string, number>();
  /** The promise `after` handed out last, and what it was made from. */
  private lastAfter: { waits: readonly Promise<void>[]; reached: number; result: Promise<number> } | undefined;

  constructor(private readonly parts: PublicationsParts) {}

  /** Delivers to every matching subscriber; resolves with how many servers got it. */
  publish(topic: string, args: unknown[]): Promise<number> {
    if (hooks.active) return hooks.publish(topic, args, (args) => this.publishNow(topic, args));
    return this.publishNow(topic, args);
  }

  private publishNow(topic: string, args: unknown[]): Promise<number> {
    const { link } = this.parts;
    this.parts.metrics?.published(topic);
    try {
      const server = this.parts.server();
      const here = server && server.deliver(topic, args) > 0 ? 1 : 0;
      if (link.connected && link.discoveringMs === 0) {
        // Hot path: every subscriber's connection is open, so the frame goes out now, unawaited.
        // subscribersOf checks the topic (the trie refuses wildcards in it).
        const targets = this.subscribersOf(topic);
        const members = link.pool.groupMembers(topic);
        if (members.length) return this.tracked(this.deliver(topic, args, targets, here, this.chooseMembers(members)));
        if (targets.length === 0) return reachedNow(here);
        const now = this.sendOpen(topic, args, targets, here);
        if (now) return now;
      }
      checkTopic(topic);
      return this.tracked(this.publishFar(topic, args, here));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The hot path: when every one of `targets` has its connection open, the frame goes to each now,
   * and the promise is one already settled unless a subscriber reads slower than we publish (an
   * awaiting publisher waits for it) or the frame is not yet where the process's exit cannot lose
   * it. Undefined when a connection is still to be made.
   */
  private sendOpen(topic: string, args: unknown[], targets: readonly PoolServer[], here: number): Promise<number> | undefined {
    const { links, limits } = this.parts;
    if (targets.length === 0) return reachedNow(here);
    for (let i = 0; i < targets.length; i++) if (links.connection(targets[i]!.id) === undefined) return undefined;
    const frame = publicationFrame(topic, args, limits);
    let waits: Promise<void>[] | undefined;
    let reached = here;
    for (let i = 0; i < targets.length; i++) {
      const connection = links.connection(targets[i]!.id)!;
      if (!connection.publish(frame)) continue;
      reached++;
      if (connection.congested) (waits ??= []).push(connection.drain());
      // Resolved means it leaves even if the process exits next: `await publish();
      // process.exit(0)` delivers (the transport's exit hook, when it is still queued).
      const leaving = committed(connection.transport);
      if (leaving) (waits ??= []).push(leaving);
    }
    return waits ? this.after(waits, reached) : reachedNow(reached);
  }

  /**
   * Settles with `reached` once `waits` have. The publications of one tick that wait for the
   * same writes (and, on a congested link, the same drain) share one promise: a promise each was
   * a tenth of what a small publication costs.
   */
  private after(waits: Promise<void>[], reached: number): Promise<number> {
    const last = this.lastAfter;
    if (last?.reached === reached && sameWaits(last.waits, waits)) return last.result;
    const result = (waits.length === 1 ? waits[0]! : Promise.all(waits)).then(() => reached);
    this.lastAfter = { waits, reached, result };
    return result;
  }

  /** See `Runtime.publishTo`. */
  publishTo(topic: string, args: unknown[], where: { host: string; port?: number | undefined }): Promise<number> {
    const targeted = (args: unknown[]): Promise<number> => {
      try {
        checkTopic(topic);
        // As `publish`: while the pool lists subscribers there, no round trip to the router.
        const now = this.parts.link.connected && this.parts.link.discoveringMs === 0 ? this.publishToListed(topic, args, where) : undefined;
        return now ?? this.tracked(this.publishToSynced(topic, args, where));
      } catch (error) {
        return Promise.reject(error);
      }
    };
    return hooks.active ? this.tracked(hooks.publish(topic, args, targeted)) : targeted(args);
  }

  /**
   * A publication to the subscribers of one host (`where`) the pool lists. Unless `synced` (the
   * pool has just caught up with the router), undefined, with nothing delivered, when it lists
   * none there or does not know the host: it may lag one that subscribed a moment ago.
   */
  private publishToListed(topic: string, args: unknown[], where: { host: string; port?: number | undefined }, synced = false): Promise<number> | undefined {
    const isTarget = this.targetOf(where, !synced);
    if (!isTarget) return undefined;
    const server = this.parts.server();
    const hereToo = server !== undefined && isTarget({ hostId: this.parts.identity.hostId, port: server.port }) && server.subscribes(topic);
    const targets = this.subscribersOf(topic).filter(isTarget);
    const members = this.parts.link.pool.groupMembers(topic).filter((member) => isTarget(member.server));
    if (!synced && !hereToo && targets.length === 0 && members.length === 0) return undefined;
    const here = hereToo && server.deliver(topic, args) > 0 ? 1 : 0;
    if (members.length === 0) {
      const now = this.sendOpen(topic, args, targets, here);
      if (now) return now;
    }
    // One host is named: its servers on another site get it one by one, not on the site subject.
    return this.tracked(this.deliver(topic, args, targets, here, this.chooseMembers(members), { oneByOne: true }));
  }

  /** A publication to one host once the pool has caught up with the router. */
  private async publishToSynced(topic: string, args: unknown[], where: { host: string; port?: number | undefined }): Promise<number> {
    await this.parts.link.sync();
    return this.publishToListed(topic, args, where, true)!;
  }

  /** Whether a server is on the host (and port) `where` names; undefined for a host the pool does not know, when `quiet`. */
  private targetOf(where: { host: string; port?: number | undefined }, quiet: boolean): ((server: { hostId: string; port: number }) => boolean) | undefined {
    let hostId: string;
    try {
      hostId = this.parts.calls.perspective(where.host).hostId;
    } catch (error) {
      if (quiet) return undefined;
      throw error;
    }
    return (server) => server.hostId === hostId && (where.port === undefined || server.port === where.port);
  }

  /** See `Runtime.reqpub`. */
  async reqpub(topic: string, args: unknown[]): Promise<any> {
    const { identity, link, calls, defaultScope, defaultTimeoutMs } = this.parts;
    checkTopic(topic);
    await link.discovered();
    const here = this.parts.server()?.subscribes(topic) === true;
    const others = this.subscribersOf(topic);
    const answering = here ? undefined : nearest(others, identity.hostId);
    if (!here && !answering) throw new NoSuchFunctionError(`${REQPUB} ${topic}`, defaultScope, `no subscriber of "${topic}"`);
    const ask = (args: unknown[], trace?: string) =>
      here ? calls.invokeHere(REQPUB, args, defaultTimeoutMs, undefined, trace) : calls.send(answering!, REQPUB, args, defaultTimeoutMs, undefined, trace);
    const answer = hooks.active ? hooks.call(REQPUB, [topic, ...args], defaultTimeoutMs, ask) : ask([topic, ...args]);
    // The answering server ran its subscriber already: its queue groups are left to the others.
    const answerer = answering?.id ?? identity.id;
    const members = link.pool.groupMembers(topic).filter((member) => member.server.id !== answerer);
    const except = answering?.gateway === undefined ? undefined : answering.id;
    void this.tracked(this.deliver(topic, args, others.filter((server) => server !== answering), 0, this.chooseMembers(members), { except }));
    return answer;
  }

  /** Resolves once every publication still on its way has found its subscribers (or failed to). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.publishing);
  }

  /** A publication still on its way, which `close()` waits for. */
  private tracked(publication: Promise<number>): Promise<number> {
    this.publishing.add(publication);
    const done = () => this.publishing.delete(publication);
    publication.then(done, done);
    return publication;
  }

  private subscribersOf(topic: string): readonly PoolServer[] {
    const own = this.parts.identity.id;
    const all = this.parts.link.pool.subscribers(topic);
    return all.some((server) => server.id === own) ? all.filter((server) => server.id !== own) : all;
  }

  private async publishFar(topic: string, args: unknown[], here: number): Promise<number> {
    // On a fresh host, subscribers elsewhere are not known yet.
    await this.parts.link.discovered();
    return this.deliver(topic, args, this.subscribersOf(topic), here, this.chooseMembers(this.parts.link.pool.groupMembers(topic)));
  }

  /**
   * For each queue group among `members`, the member that gets this publication: each group's
   * members take turns (per publisher, from a random one), those whose router has not heard from
   * them lately only when no other is left, members on other sites only when the group has none
   * on this LAN. Returns the groups chosen per server.
   */
  private chooseMembers(members: readonly GroupMember[]): Map<PoolServer, string[]> {
    if (members.length === 0) return NO_CHOICE;
    const chosen = new Map<PoolServer, string[]>();
    // A server with several subscriptions in a group (two patterns) takes one turn, as one member.
    const byGroup = new Map<string, Set<PoolServer>>();
    for (const { server, group } of members) {
      const servers = byGroup.get(group);
      if (servers) servers.add(server);
      else byGroup.set(group, new Set([server]));
    }
    for (const [group, set] of byGroup) {
      const all = [...set];
      const lan = all.filter((server) => server.gateway === undefined);
      const servers = lan.length ? lan : all;
      const well = servers.filter((server) => !server.suspect);
      const from = well.length ? well : servers;
      // A random first turn: publishers that publish once each (`labc publish`) spread too.
      const turn = this.groupTurns.get(group) ?? Math.floor(Math.random() * 0x10000);
      this.groupTurns.set(group, turn + 1);
      const server = from[turn % from.length]!;
      const groups = chosen.get(server);
      if (groups) groups.push(group);
      else chosen.set(server, [group]);
    }
    return chosen;
  }

  /**
   * Sends a publication to `targets` (their subscribers outside queue groups) and to the servers
   * `chosen` for queue groups (one subscriber of each group there); resolves with `reached` plus
   * how many servers got it. Subscribers on other sites get one publication per gateway, which
   * the backplane carries to every site (`except` one server there), unless `oneByOne`.
   */
  private async deliver(
    topic: string,
    args: unknown[],
    targets: readonly PoolServer[],
    reached: number,
    chosen: Map<PoolServer, string[]> = NO_CHOICE,
    { oneByOne = false, except }: { oneByOne?: boolean; except?: string | undefined } = {},
  ): Promise<number> {
    const { identity, limits, link, links } = this.parts;
    let all = targets;
    if (chosen.size) {
      const server = this.parts.server();
      for (const [target, groups] of chosen) {
        // This process was chosen for some of its groups: they run here, now.
        if (target.id === identity.id && server && server.deliverGroups(topic, args, groups) > 0 && reached === 0) reached = 1;
      }
      all = [...new Set([...targets, ...chosen.keys()])].filter((target) => target.id !== identity.id);
    }
    if (all.length === 0) return reached;
    // How many subscribers outside groups each gateway's publication to the other sites reaches.
    const bySite = new Map<string, number>();
    if (!oneByOne) {
      for (const target of targets) if (target.gateway !== undefined) bySite.set(target.gateway, (bySite.get(target.gateway) ?? 0) + 1);
    }
    let plain: Buffer | Buffer[] | undefined;
    const sent = all.map(async (target) => {
      const groups = chosen.get(target) ?? NO_GROUPS;
      const onSite = !oneByOne && target.gateway !== undefined;
      // Its subscribers outside groups get the site publication; here only its groups are left.
      if (onSite && groups.length === 0) return;
      try {
        const frame = () => (groups.length ? encodePublication(topic, args, limits, groups) : (plain ??= encodePublication(topic, args, limits)));
        if (!(await (await links.route(target)).publish(topic, args, groups, onSite, frame))) return;
        if (!(onSite && targets.includes(target))) reached++;
      } catch (error) {
        debug("publication on %s not delivered to %s: %s", topic, describe(target), (error as Error).message);
      }
    });
    const toSites = [...bySite].map(async ([gateway, count]) => {
      try {
        await link.publishToSites(gateway, topic, args, except);
        reached += count;
      } catch (error) {
        debug("publication on %s not passed to the other sites: %s", topic, (error as Error).message);
      }
    });
    await Promise.all([...sent, ...toSites]);
    return reached;
  }
}

/** One of the servers on this host, else on this LAN, else on another site; random among them. */
function nearest(servers: readonly PoolServer[], hostId: string): PoolServer | undefined {
  const local = servers.filter((server) => server.hostId === hostId);
  const lan = local.length ? local : servers.filter((server) => server.gateway === undefined);
  const choices = lan.length ? lan : servers;
  return choices[Math.floor(Math.random() * choices.length)];
}
