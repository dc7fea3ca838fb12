import { randomBytes, timingSafeEqual } from "node:crypto";
import dgram from "node:dgram";
import net from "node:net";
import { debug } from "../log.js";
import { fromOwnHost } from "../trust/own-address.js";
import { newInviteCode, type InviteCode } from "./invite-code.js";
import { InviteChannel, type MessagePipe } from "./invite-channel.js";
import { offerSecret, type InviteParty } from "./invite-exchange.js";

/** How long an invite stays open unless told otherwise: long enough to walk to the new host. */
export const DEFAULT_INVITE_MS = 10 * 60_000;
/** How long one exchange may wait for the other side's next message. */
const EXCHANGE_TIMEOUT_MS = 30_000;
/** At most this many answers to asks a second: a flood of asks does not become a flood of answers. */
const ASK_ANSWERS_PER_SECOND = 20;

/** The port of invites beside a root port: TCP for the exchange, UDP for "who has invite 7?". */
export function invitePortOf(rootPort: number): number {
  return rootPort + 1;
}

/** How an invite ended. */
export type InviteEnd =
  | { kind: "joined"; peer: InviteParty; address: string }
  | { kind: "wrong-code"; address: string }
  | { kind: "not-stored"; peer: InviteParty; address: string; reason: string }
  | { kind: "broken"; address: string; reason: string }
  | { kind: "expired" }
  | { kind: "revoked"; by: string };

export interface InviteOptions {
  /** The TCP and UDP port it listens on (invitePortOf the root port). */
  port: number;
  /** Where it listens: every interface by default, where the new host is. */
  address?: string;
  validMs?: number;
  /** The network secret it hands over. */
  secret: string;
  self: InviteParty;
  /** Whether to answer asks on the LAN (discovery.enabled); without, the new host needs --host. */
  answerAsks: boolean;
}

/**
 * One open invite: a fresh code, a TCP listener for the exchange and a UDP socket that answers
 * "who has invite N?", for `validMs` or until one exchange for its number has begun (one guess),
 * or until revoked. `ended` settles once, with how it ended; the sockets are closed by then.
 *
 * It can be revoked from this host by whoever can read `revokeToken` (`labc invite` keeps it in a
 * file of its owner's): a connection from this host that sends `{revoke: token}` first.
 */
export class InviteServer {
  readonly code: InviteCode;
  readonly expiresAt: number;
  readonly revokeToken = randomBytes(24).toString("base64url");
  readonly ended: Promise<InviteEnd>;
  private end!: (how: InviteEnd) => void;
  private spent = false;
  private finished = false;
  private readonly tcp: net.Server;
  private udp?: dgram.Socket;
  private readonly expiry: NodeJS.Timeout;
  private answered = { second: 0, count: 0 };

  private constructor(private readonly options: InviteOptions) {
    this.code = newInviteCode();
    this.expiresAt = Date.now() + (options.validMs ?? DEFAULT_INVITE_MS);
    this.ended = new Promise((resolve) => (this.end = resolve));
    this.tcp = net.createServer((socket) => this.accept(socket));
    this.expiry = setTimeout(() => this.finish({ kind: "expired" }), options.validMs ?? DEFAULT_INVITE_MS);
    this.expiry.unref?.();
  }

  /** Opens an invite; rejects (EADDRINUSE) when another invite holds the port on this host. */
  static async open(options: InviteOptions): Promise<InviteServer> {
    const invite = new InviteServer(options);
    try {
      await new Promise<void>((resolve, reject) => {
        invite.tcp.once("error", reject);
        invite.tcp.listen({ port: options.port, host: options.address ?? "0.0.0.0", exclusive: true }, () => {
          invite.tcp.removeListener("error", reject);
          resolve();
        });
      });
      if (options.answerAsks) await invite.listenForAsks();
    } catch (error) {
      clearTimeout(invite.expiry);
      invite.tcp.close();
      invite.udp?.close();
      throw error;
    }
    return invite;
  }

  get open(): boolean {
    return !this.finished && !this.spent;
  }

  revoke(by = "this host"): void {
    this.finish({ kind: "revoked", by });
  }

  private finish(how: InviteEnd): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.expiry);
    this.tcp.close();
    try {
      this.udp?.close();
    } catch {
      // closed already
    }
    this.end(how);
  }

  private accept(socket: net.Socket): void {
    const channel = new InviteChannel(socket, EXCHANGE_TIMEOUT_MS);
    const address = channel.peerAddress;
    if (!this.open) {
      channel.end({ error: "LABC_NO_INVITE", message: "this host's invite was used or has ended" });
      return;
    }
    // Whether this connection's exchange is the one that spent the invite.
    let mine = false;
    this.run(channel, address, () => {
      if (this.spent || this.finished) return false;
      return (this.spent = mine = true);
    }).catch((error: Error) => {
      debug("invite: exchange with %s broke off: %s", address, error.message);
      if (mine) this.finish({ kind: "broken", address, reason: error.message });
    });
  }

  private async run(channel: InviteChannel, address: string, spend: () => boolean): Promise<void> {
    const payload = { secret: this.options.secret };
    // A revocation comes as the first message instead of the joiner's (after our hello).
    const pipe: MessagePipe = {
      send: (message) => channel.send(message),
      end: (message) => channel.end(message),
      receive: async () => {
        const message = await channel.receive();
        if (typeof message.revoke === "string") {
          this.handleRevoke(channel, address, message.revoke);
          throw new Error("a revocation");
        }
        return message;
      },
    };
    const outcome = await offerSecret(pipe, { code: this.code.text, nameplate: this.code.nameplate }, this.options.self, payload, spend);
    switch (outcome.kind) {
      case "other-invite":
        return;
      case "joined":
        return this.finish({ kind: "joined", peer: outcome.peer, address });
      case "not-stored":
        return this.finish({ kind: "not-stored", peer: outcome.peer, address, reason: outcome.reason });
      case "wrong-code":
        return this.finish({ kind: "wrong-code", address });
      case "broken":
        return this.finish({ kind: "broken", address, reason: outcome.reason });
    }
  }

  private handleRevoke(channel: InviteChannel, address: string, token: string): void {
    const given = Buffer.from(token);
    const ours = Buffer.from(this.revokeToken);
    if (!fromOwnHost(address) || given.length !== ours.length || !timingSafeEqual(given, ours)) {
      channel.end({ error: "LABC_NOT_PERMITTED", message: "only this host's `labc invite --revoke` ends its invite" });
      return;
    }
    channel.end({ revoked: true });
    this.revoke("labc invite --revoke");
  }

  private listenForAsks(): Promise<void> {
    const udp = dgram.createSocket({ type: "udp4", reuseAddr: true });
    this.udp = udp;
    udp.on("error", (error) => debug("invite: udp: %s", error.message));
    udp.on("message", (data, remote) => {
      if (data.length > 512 || !this.open) return;
      let ask: { labcInvite?: unknown; nameplate?: unknown };
      try {
        ask = JSON.parse(data.toString("utf8"));
      } catch {
        return;
      }
      if (ask?.labcInvite !== "ask" || ask.nameplate !== this.code.nameplate) return;
      const second = Math.floor(Date.now() / 1000);
      if (second !== this.answered.second) this.answered = { second, count: 0 };
      if (++this.answered.count > ASK_ANSWERS_PER_SECOND) return;
      const answer = { labcInvite: "here", nameplate: this.code.nameplate, port: this.options.port, name: this.options.self.name };
      udp.send(JSON.stringify(answer), remote.port, remote.address);
    });
    return new Promise((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(this.options.port, () => {
        udp.removeListener("error", reject);
        resolve();
      });
    });
  }
}
