import type { Backplane } from "../backplane/nats-backplane.js";
import type { Origin } from "../backplane/site-origin.js";
import { LimitError, NoSuchFunctionError } from "../errors.js";
import { Connection } from "../net/connection.js";
import { tripped } from "../net/trips.js";
import { reachedThrough, type FunctionPool, type PoolServer } from "../pool/function-pool.js";
import { FLAG_FAR, FLAG_OTHER_SITE } from "../wire/codec.js";
import { exported, Kind, REQPUB, type Message, type PubBody, type ReqBody } from "../wire/message.js";
import type { HostInfoAnswers } from "./host-info.js";
import type { Peers } from "./host-links.js";
import { RelayedCall } from "./relayed-call.js";

/** Whether a request came over the backplane from another site. */
function isSite(from: Connection | Origin): boolean {
  return !(from instanceof Connection);
}

/** The trip a publication the backplane would not take counts as: a limit (max_payload), or a bad message. */
function limitOf(error: unknown): string {
  return error instanceof LimitError ? error.limit : "bad_message";
}

export interface ForwardingParts {
  host: string;
  hostId: string;
  /** How long a forwarded request may take when its caller did not say. */
  forwardTimeoutMs: number;
  pool: FunctionPool;
  peers: Peers;
  backplane: Backplane | undefined;
  /** The lifeline of a server of this host. */
  lifelineOf: (serverId: string) => Connection | undefined;
  /** The router's own functions. */
  info: HostInfoAnswers;
}

/**
 * Requests and publications the router passes on: from a process that cannot reach a server
 * directly, from another host's router, from another site on the backplane; over the server's
 * lifeline, its host's link, or the backplane, and the answer back as it came. What a caller on
 * another host may not call is refused here, as if it did not exist.
 */
export class Forwarding {
  constructor(private readonly parts: ForwardingParts) {}

  forward(message: Message, from: Connection | Origin): void {
    const body = message.body as ReqBody & PubBody;
    if (message.kind === Kind.req && body.target === undefined) {
      const far = isSite(from) || this.parts.peers.isLink(from) || !from.fromOwnHost;
      if (this.parts.info.answer(message, from, far)) return;
    }
    if (message.kind === Kind.pub && body.gateway !== undefined) return this.toSites(message, body.gateway, from);
    // From another site: whoever may publish on NATS, no member. The server is told, whichever
    // host of this LAN it is on (the routers between keep the bit), as ServiceControl must know.
    if (message.kind === Kind.req && isSite(from)) message.frame![1]! |= FLAG_FAR | FLAG_OTHER_SITE;
    const target = body.target === undefined ? undefined : this.parts.pool.servers.get(body.target);
    if (message.kind === Kind.req && target?.hostId === this.parts.hostId && (this.parts.peers.isLink(from) || !from.fromOwnHost)) {
      // A caller on another host: its server is told (FLAG_FAR), and what other hosts may
      // not call is refused here, as if it did not exist.
      const entry = target.functions.get(String(body.fn));
      // A reqpub goes to a subscriber: subscriptions are seen by every host.
      if (body.fn !== REQPUB && (!entry || !exported(entry))) {
        return from.replyError(message.id, new NoSuchFunctionError(String(body.fn), "network", `not on ${this.parts.host}`));
      }
      message.frame![1]! |= FLAG_FAR;
    }
    if (target?.gateway === this.parts.hostId) return this.acrossSites(message, target, from);
    // What comes from another host's router goes only to this host's servers: never a loop.
    const via = target
      ? target.hostId === this.parts.hostId
        ? this.parts.lifelineOf(target.id)
        : !this.parts.peers.isLink(from)
          ? this.parts.peers.linkTo(reachedThrough(target))
          : undefined
      : undefined;
    if (message.kind === Kind.pub) {
      via?.forward(message);
      return;
    }
    if (!via) {
      const where = target ? `server ${target.id} on ${target.host} is not reachable` : `no server ${body.target}`;
      return from.replyError(message.id, new NoSuchFunctionError(String(body.fn), "network", where));
    }
    // A stream's items pass back as they come, and the reader's credit goes on to the server;
    // so does the caller's cancel.
    const call = new RelayedCall(from, message.id, via, body.credit !== undefined);
    from.track(message.id, call);
    call.viaId = via.relay(message, String(body.fn), this.timeoutOf(body), call);
  }

  private timeoutOf(body: ReqBody): number {
    return Number(body.timeoutMs) > 0 ? Number(body.timeoutMs) : this.parts.forwardTimeoutMs;
  }

  /**
   * A request or publication for a server of another site, of which this router is the
   * gateway: over the backplane. Only this host's processes and this LAN's routers send it here;
   * what came from another site never goes on to a third.
   */
  private acrossSites(message: Message, target: PoolServer, from: Connection | Origin): void {
    const body = message.body as ReqBody;
    const where = `server ${target.id} on ${target.host} (another site)`;
    if (message.kind === Kind.pub) {
      if (isSite(from)) return;
      try {
        return this.parts.backplane?.sendPublication(message, target);
      } catch (error) {
        // A peer chose the topic, and may send it by the thousand: counted, logged within the log's budget.
        return tripped(limitOf(error), (from as Connection).transport.remote, `a publication on ${message.body.topic} not passed to ${where}: ${(error as Error).message}`);
      }
    }
    if (!this.parts.backplane || isSite(from)) return from.replyError(message.id, new NoSuchFunctionError(String(body.fn), "network", `${where} is not reachable from here`));
    // A stream's items pass back as they come; the reader's credit stays here (see siteOrigin).
    const onItem = body.credit === undefined ? undefined : (item: Buffer) => from.passItem(message.id, item);
    this.parts.backplane.relay(message, target, this.timeoutOf(body), onItem).then(
      (answer) => from.replyWith(message.id, answer),
      (error) => from.replyError(message.id, error),
    );
  }

  /** A publication for every other site: published on the backplane by the gateway named. */
  private toSites(message: Message, gateway: string, from: Connection | Origin): void {
    if (isSite(from)) return;
    if (gateway !== this.parts.hostId) {
      if (!this.parts.peers.isLink(from)) this.parts.peers.linkTo(gateway)?.forward(message);
      return;
    }
    try {
      this.parts.backplane?.publishToSites(message);
    } catch (error) {
      tripped(limitOf(error), (from as Connection).transport.remote, `a publication on ${message.body.topic} not passed to the other sites: ${(error as Error).message}`);
    }
  }

  /** A publication from another site: to every subscriber of this site outside groups (one `except`). */
  deliverPublication(message: Message): void {
    const { topic, args, except } = message.body as PubBody;
    for (const server of this.parts.pool.subscribers(topic)) {
      if (server.gateway !== undefined || server.id === except) continue;
      if (server.hostId === this.parts.hostId) this.parts.lifelineOf(server.id)?.forward(message);
      else this.parts.peers.linkTo(server.hostId)?.send(Kind.pub, { topic, args, target: server.id });
    }
  }
}
