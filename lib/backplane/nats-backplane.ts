// A router's gateway to the other sites on the NATS backplane (docs/backplane.md).
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { BackplaneSettings } from "../config.js";
import { ConnectionLostError, LimitError, MalformedFrameError } from "../errors.js";
import { debug, warn } from "../log.js";
import type { Limits } from "../wire/limits.js";
import type { FunctionPool, PoolServer } from "../pool/function-pool.js";
import { parseSubscription } from "../pool/topic-trie.js";
import { decodeMessage } from "../wire/codec.js";
import { Kind, KIND_NAMES, type Message, type ServerEntry } from "../wire/message.js";
import { problemWith } from "../wire/validate.js";
import { connectionOptions } from "./connection-options.js";
import { RelayedRequests } from "./relayed-requests.js";
import { NOWHERE, siteOrigin, type Origin } from "./site-origin.js";
import { SiteListings, type SiteHost, type SiteNews } from "./site-listings.js";
import { Subjects } from "./subjects.js";
import type { BackplaneStatus } from "../wire/router-answers.js";

export interface BackplaneOptions {
  settings: BackplaneSettings;
  self: { hostId: string; name: string; instance: string };
  limits: Limits;
  /** The router's pool: other sites' servers are kept there, marked with this host as gateway. */
  pool: FunctionPool;
  /** Whether a host id is one of this LAN's (this host, or one linked to it): no other site speaks for it. */
  lanHost: (hostId: string) => boolean;
  /** This site's servers as other sites may see them, and its hosts. */
  site: () => { servers: ServerEntry[]; hosts: SiteHost[] };
  /** Tells this host's processes and this LAN's routers a change to other sites' servers. */
  tell: (kind: Kind, body: object) => void;
  /** A request, or a publication for one server, that came from another site. */
  deliver: (message: Message, from: Origin) => void;
  /** A publication that came from another site, for every subscriber of this site. */
  deliverPublication: (message: Message) => void;
}


const NOTHING = new Uint8Array(0);
/** How long a gateway waits before trying again to link to NATS the first time. */
const RETRY_MS = 2000;
/** How long a stopping gateway waits for NATS to take its last words. */
const CLOSE_MS = 1000;

/**
 * The router's side of the NATS backplane: it makes this router the gateway of its site
 * (its LAN) to every other site on the same NATS server and realm. It says what its site
 * offers, learns what the others offer (kept in the pool, marked as reached through this
 * router), watches their beats, and carries requests and publications between sites.
 */
export class Backplane {
  private connection: NatsConnection | null = null;
  private readonly subjects: Subjects;
  private readonly sites: SiteListings;
  private readonly topicSubscriptions = new Map<string, Subscription>();
  private version = 0;
  private said = "";
  /** This site's listing as last said, answered to every gateway that asks for it. */
  private listing: Uint8Array = new Uint8Array(0);
  private changeTimer: NodeJS.Timeout | null = null;
  private beatTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private up = false;
  private closed = false;
  /** Why NATS is not linked now, as the log said it. */
  private problem: string | undefined = "not linked yet";
  private inbox: ((prefix: string) => string) | undefined;
  /** Where the other gateways' answers to this one's greeting come. */
  private replies = "";
  /** Answers to the requests this gateway relayed come to `<answers>.<token>`. */
  private answers = "";
  private readonly relayed = new RelayedRequests();

  private readonly siteQueue: string;

  constructor(private readonly options: BackplaneOptions) {
    this.subjects = new Subjects(options.settings.realm);
    this.siteQueue = `labc-site-${options.self.hostId}`;
    const { self, pool, lanHost, tell, settings } = options;
    this.sites = new SiteListings({
      self: self.hostId,
      pool,
      lanHost,
      tell,
      heartbeatMs: settings.heartbeatMs,
      ask: (hostId) => this.connection?.publish(this.subjects.pool(hostId), NOTHING, { reply: this.replies }),
    });
  }

  /** Connects (again and again, until it works) and starts saying this site's servers. */
  async start(): Promise<void> {
    const nats = await import("@nats-io/transport-node");
    const { settings, self } = this.options;
    const options = connectionOptions(settings, `labc router ${self.name}`, nats);
    this.inbox = nats.createInbox;
    const connection = await this.firstConnection(() => nats.connect(options));
    if (!connection) return;
    this.connection = connection;
    this.subscribe(this.connection);
    this.up = true;
    this.problem = undefined;
    warn(`backplane: linked to NATS at ${this.connection.getServer()} (subjects ${this.subjects.prefix}.>)`);
    if (settings.guarded && !this.connection.info?.auth_required) {
      warn(
        `backplane: NATS at ${this.connection.getServer()} asks for no credentials, but this network has a secret: whoever reaches that` +
          ` server can call what this site exports to other hosts; give it users (docs/backplane.md#trust)`,
      );
    }
    void this.watchStatus(this.connection);
    this.greet();
    this.nextBeat();
  }

  /**
   * Connects, trying again every 2 s until it works or the router stops; says why it cannot (a
   * server out of reach, credentials or a certificate refused) when that changes, and once a
   * minute. Once linked, the NATS client reconnects by itself.
   */
  private async firstConnection(connect: () => Promise<NatsConnection>): Promise<NatsConnection | undefined> {
    let said = "";
    let saidAt = 0;
    while (!this.closed) {
      try {
        const connection = await connect();
        if (!this.closed) return connection;
        void connection.close();
      } catch (error) {
        const why = (error as Error).message;
        this.problem = `cannot link to NATS at ${this.options.settings.servers.join(", ")}: ${why}`;
        if (why !== said || Date.now() - saidAt > 60_000) {
          warn(`backplane: cannot link to NATS at ${this.options.settings.servers.join(", ")}: ${why}; trying again every ${RETRY_MS / 1000} s`);
          [said, saidAt] = [why, Date.now()];
        }
        await new Promise((done) => (this.retryTimer = setTimeout(done, RETRY_MS)));
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.changeTimer) clearTimeout(this.changeTimer);
    if (this.beatTimer) clearTimeout(this.beatTimer);
    const connection = this.connection;
    if (!connection) return;
    if (this.up) this.say(this.news({ bye: true }));
    // The bye is sent before the connection closes; a NATS out of reach holds nothing up.
    const drained = connection.drain().catch(() => connection.close());
    await Promise.race([drained, new Promise((done) => setTimeout(done, CLOSE_MS).unref())]);
  }

  /** This site's servers may have changed: said to the other sites once this tick's changes are in. */
  changed(): void {
    if (this.changeTimer || !this.up) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = null;
      const { servers, hosts } = this.options.site();
      const said = JSON.stringify([servers, hosts]);
      if (said === this.said) return;
      this.said = said;
      this.version++;
      this.listing = this.news({ servers, hosts });
      this.say(this.listing);
      this.followTopics(servers);
    }, 10);
  }

  /** Whether this gateway is linked to NATS, to which server, how many sites it knows, or why not. */
  status(): BackplaneStatus {
    const server = this.up ? this.connection?.getServer() : undefined;
    return { linked: this.up, server, realm: this.options.settings.realm, sites: this.sites.size, problem: this.problem };
  }

  /** Other sites' hosts, with their gateway's name, for `labc hosts`. */
  hosts(): { hostId: string; name: string; site: string; suspect: boolean; lastHeardMs: number }[] {
    return this.sites.hosts();
  }

  /**
   * Passes a request on to the site of `server`, and settles with its answer's frame. A stream's
   * items come before it, each to `onItem`; the timeout covers the wait for each of them.
   */
  relay(message: Message, server: PoolServer, timeoutMs: number, onItem?: (item: Buffer) => void): Promise<Buffer> {
    const fn = String(message.body.fn);
    const where = `${server.id} on ${server.host}`;
    const connection = this.connection;
    const site = this.sites.siteOf(server.id);
    if (!connection || !this.up || site === undefined) {
      return Promise.reject(new ConnectionLostError(where, fn, new Error("the backplane is not connected")));
    }
    const frame = message.frame!;
    try {
      this.checkSize(frame, fn);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      const token = this.relayed.add({ fn, where, timeoutMs, resolve, reject, onItem, timer: undefined });
      connection.publish(this.subjects.to(site), frame, { reply: `${this.answers}.${token}` });
    });
  }

  /** An answer (or a stream's item) to a relayed request, by the token ending its subject. */
  private answered(msg: Msg): void {
    this.relayed.answered(msg.subject.slice(this.answers.length + 1), msg.data);
  }

  /** Passes a publication for one server on to its site. */
  sendPublication(message: Message, server: PoolServer): void {
    const site = this.sites.siteOf(server.id);
    if (!this.connection || !this.up || site === undefined) return;
    this.checkSize(message.frame!, message.body.topic);
    this.connection.publish(this.subjects.to(site), message.frame!);
  }

  /** Publishes on the topic's subject: NATS brings it to every site with a matching subscription. */
  publishToSites(message: Message): void {
    if (!this.connection || !this.up) return;
    this.checkSize(message.frame!, message.body.topic);
    this.connection.publish(this.subjects.publication(message.body.topic), message.frame!);
  }

  /** The most one NATS message may carry, as its server said (none known: no bound here). */
  private readonly maxPayload = (): number => this.connection?.info?.max_payload ?? Infinity;

  private checkSize(frame: Buffer, what: string): void {
    const most = this.maxPayload();
    if (frame.length > most) {
      throw new LimitError("max_payload", `${what}: ${frame.length} bytes cross the backplane only up to its NATS server's max_payload (${most} bytes)`);
    }
  }

  private subscribe(connection: NatsConnection): void {
    const { self } = this.options;
    connection.subscribe(this.subjects.sites, { callback: ok((msg) => this.heard(msg)) });
    connection.subscribe(this.subjects.pool(self.hostId), { callback: ok((msg) => void msg.respond(this.currentListing())) });
    connection.subscribe(this.subjects.to(self.hostId), { callback: ok((msg) => this.arrived(msg)) });
    // Every gateway answers a newcomer's greeting with its listing, to the newcomer alone.
    connection.subscribe(this.subjects.greeting, { callback: ok((msg) => void msg.respond(this.currentListing())) });
    this.replies = this.inbox!(`${this.subjects.prefix}.inbox`);
    connection.subscribe(this.replies, { callback: ok((msg) => this.heard(msg)) });
    this.answers = this.inbox!(`${this.subjects.prefix}.inbox`);
    connection.subscribe(`${this.answers}.*`, { callback: ok((msg) => this.answered(msg)) });
  }

  /** This site's listing, or a beat before the first listing is made (10 ms after the start). */
  private currentListing(): Uint8Array {
    return this.listing.length ? this.listing : this.news({});
  }

  /**
   * Says this site, and asks every other gateway for its listing at once: a gateway that
   * arrives (or comes back) knows every site within a round trip, not a beat later.
   */
  private greet(): void {
    this.say(this.news({}));
    this.connection?.publish(this.subjects.greeting, this.news({}), { reply: this.replies });
    this.changed();
  }

  /** Subscribes to the subjects of this site's subscriptions outside groups, and only those. */
  private followTopics(servers: ServerEntry[]): void {
    const wanted = new Set<string>();
    for (const server of servers) {
      for (const key of server.topics) {
        const { pattern, group } = parseSubscription(key);
        if (group === undefined) for (const subject of this.subjects.publications(pattern)) wanted.add(subject);
      }
    }
    for (const [subject, subscription] of this.topicSubscriptions) {
      if (wanted.has(subject)) continue;
      subscription.unsubscribe();
      this.topicSubscriptions.delete(subject);
    }
    for (const subject of wanted) {
      if (this.topicSubscriptions.has(subject)) continue;
      // One queue group for all of them: NATS then delivers a publication once, whichever of this
      // site's subjects match it (a.# and a.* both match a.b).
      const subscription = this.connection!.subscribe(subject, { queue: this.siteQueue, callback: ok((msg) => this.publication(msg)) });
      this.topicSubscriptions.set(subject, subscription);
    }
  }

  private publication(msg: Msg): void {
    const message = this.decode(msg, Kind.pub);
    if (message) this.options.deliverPublication(message);
  }

  /** A request or a publication for one server of this site. */
  private arrived(msg: Msg): void {
    const message = this.decode(msg, msg.reply ? Kind.req : Kind.pub);
    if (!message) {
      if (msg.reply) siteOrigin(msg, this.maxPayload).replyError(0, new MalformedFrameError("not a labc request"));
      return;
    }
    this.options.deliver(message, msg.reply ? siteOrigin(msg, this.maxPayload) : NOWHERE);
  }

  private decode(msg: Msg, kind: Kind): Message | undefined {
    try {
      const frame = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
      if (frame.length > this.options.limits.maxFrameBytes) throw new Error(`${frame.length} bytes is over the frame limit`);
      const message = decodeMessage(frame);
      const problem = message.kind === kind ? problemWith(message.kind, message.body) : `a ${KIND_NAMES[kind]} was expected`;
      if (problem) throw new Error(problem);
      return message;
    } catch (error) {
      debug("backplane: a message on %s refused: %s", msg.subject, (error as Error).message);
      return undefined;
    }
  }

  private heard(msg: Msg): void {
    let news: SiteNews;
    try {
      news = msg.json<SiteNews>();
    } catch {
      return;
    }
    this.sites.heard(news);
  }

  /** Every beat: this site's beat, and each other site judged by how long ago it was heard. */
  private beat(): void {
    if (this.up) this.say(this.news({}));
    this.sites.judge();
    this.nextBeat();
  }

  private nextBeat(): void {
    // Jittered like the LAN's heartbeats, so that gateways started together do not beat in step.
    this.beatTimer = setTimeout(() => this.beat(), this.options.settings.heartbeatMs * (0.8 + Math.random() * 0.2));
    this.beatTimer.unref();
  }

  private news(extra: Partial<SiteNews>): Uint8Array {
    const { self } = this.options;
    return Buffer.from(JSON.stringify({ hostId: self.hostId, name: self.name, instance: self.instance, version: this.version, ...extra }));
  }

  private say(news: Uint8Array): void {
    try {
      this.connection?.publish(this.subjects.site(this.options.self.hostId), news);
    } catch (error) {
      debug("backplane: not said: %s", (error as Error).message);
    }
  }

  /** Losing NATS leaves this LAN on its own, said once; its return brings every site back. */
  private async watchStatus(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === "disconnect" && this.up) {
        this.up = false;
        this.problem = `lost NATS (${status.server}) at ${new Date().toISOString()}, reconnecting`;
        warn(`backplane: lost NATS (${status.server}): other sites are out of reach, this LAN goes on by itself; reconnecting`);
        this.sites.dropAll("NATS lost");
        this.relayed.lost();
      } else if (status.type === "reconnect" && !this.up) {
        this.up = true;
        this.problem = undefined;
        warn(`backplane: NATS is back (${status.server}): other sites return as they are heard`);
        this.said = "";
        this.greet();
      }
    }
  }
}

/** A subscription's callback: NATS reports a subscription's errors (permissions) here. */
function ok(handle: (msg: Msg) => void): (error: Error | null, msg: Msg) => void {
  return (error, msg) => {
    if (error) return warn(`backplane: ${error.message}`);
    handle(msg);
  };
}
