import type { BackplaneSettings } from "../config.js";
import { debug } from "../log.js";
import type { Server } from "../server.js";
import { encodeMessage } from "../wire/codec.js";
import { Kind, PROTOCOL_VERSION } from "../wire/message.js";
import { linkToNats, type NatsLink } from "./nats-link.js";
import type { NatsPipe } from "./nats-pipe.js";
import { Subjects } from "./subjects.js";

/** The hello of a caller on NATS whose own hello this server did not get. */
const UNNAMED_CALLER = Buffer.concat(
  [encodeMessage(Kind.hello, 0, { v: PROTOCOL_VERSION, role: "client", id: "unnamed", pid: 0, host: "", hostId: "unnamed" })].flat(),
);

/** How long linking to NATS may take before a process gives up and uses its gateway. */
const LINK_TIMEOUT_MS = 1000;

/**
 * A process on a gateway's host speaking NATS itself (docs/backplane.md#direct-calls): its calls
 * to servers of other sites that do the same go to them on NATS, and its server takes such calls,
 * past both gateways. Linked on first use; without it (no `[backplane]` setting here, a `.creds`
 * login, NATS out of reach) the gateways carry everything, as they always can.
 */
export class DirectCalls {
  private linking: Promise<NatsLink | null> | undefined;
  private readonly subjects: Subjects | undefined;
  private answering: Server | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly settings: BackplaneSettings | undefined,
    private readonly name: string,
  ) {
    this.subjects = settings && !settings.creds ? new Subjects(settings.realm) : undefined;
  }

  /** Whether this process may link at all (a `[backplane]` setting without `creds`). */
  get linkable(): boolean {
    return this.subjects !== undefined;
  }

  /** A pipe to server `serverId` of another site, or null when this process has no link. */
  async pipe(serverId: string): Promise<NatsPipe | null> {
    const link = await this.link();
    return link && !link.closed ? await link.open(this.subjects!.server(serverId)) : null;
  }

  /**
   * Lets `server` take calls from NATS too, and again whenever its link comes back. Without a
   * link now (NATS out of reach, this login refused the subject), it says it does not, and its
   * calls from other sites come through the gateways.
   */
  async answer(server: Server): Promise<void> {
    if (!this.subjects) return;
    const link = await this.link();
    if (!link || this.closed) return;
    try {
      // Each caller's reply subject is a connection of its own, served as one over a socket.
      const stop = await link.serve(this.subjects.server(server.id), (pipe, first) => {
        pipe.maxWaitingBytes = server.limits.maxUnsentBytes;
        const connection = server.accept(pipe, `caller on ${pipe.remote}`, true);
        pipe.busy = () => connection.servingCount > 0;
        // A caller whose hello went to an earlier link of this server (NATS came back since)
        // goes on without one: it is served as a caller that did not say who it is.
        if (first[4] !== Kind.hello) pipe.receive(UNNAMED_CALLER);
      });
      server.answerOnNats(stop);
      this.answering = server;
    } catch (error) {
      debug("server %s does not take calls from NATS: %s", server.id, (error as Error).message);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.answering = undefined;
    clearTimeout(this.retryTimer);
    const link = await this.linking;
    await link?.close();
  }

  private link(): Promise<NatsLink | null> {
    if (!this.subjects || this.closed) return Promise.resolve(null);
    this.linking ??= linkToNats(this.settings!, this.name, LINK_TIMEOUT_MS).then(
      (link) => {
        link.closing((error) => this.lost(error));
        return link;
      },
      (error) => {
        debug("no NATS link of this process (%s): other sites through the gateway", (error as Error).message);
        this.retryLater();
        return null;
      },
    );
    return this.linking;
  }

  private lost(error: Error | undefined): void {
    if (this.closed) return;
    debug("this process's NATS link ended: %s", error?.message ?? "closed");
    this.linking = undefined;
    // A server goes on taking calls from NATS once it is back; callers link again when they call.
    if (this.answering) this.retryLater();
  }

  /** Calls go through the gateway for `backplane.relink` before linking is tried again. */
  private retryLater(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.linking = undefined;
      if (this.answering) void this.answer(this.answering);
    }, this.settings!.relinkMs).unref();
  }
}
