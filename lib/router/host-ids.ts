import { networkInterfaces } from "node:os";
import { BadArgumentsError } from "../errors.js";
import { warn } from "../log.js";
import type { Connection } from "../net/connection.js";
import type { Lifeline } from "./lifeline.js";

/** What the check needs to know of a linked host. */
export interface LinkedHost {
  name: string;
  link: Connection | null;
  lifeline: Lifeline | null;
  instance: string | undefined;
  address: string | undefined;
}

/** Who a router says it is in its hello or welcome. */
export interface Claimed {
  hostId: string;
  instance: string;
}

function ownAddresses(): Set<string> {
  return new Set(
    Object.values(networkInterfaces())
      .flat()
      .map((info) => info?.address ?? ""),
  );
}

/**
 * Who may go by which host id: another machine that has this host's id (a clone), and a router
 * that uses the id of a host linked and answering to speak for it.
 */
export class HostIds {
  private clashSaidAt = 0;

  constructor(
    private readonly self: { hostId: string; name: string },
    private readonly heartbeatMs: number,
  ) {}

  /** Whether an announcement of this host's id came from another machine (addresses not ours). */
  fromAnotherMachine(addresses: readonly string[]): boolean {
    const own = ownAddresses();
    return addresses.length > 0 && !addresses.some((address) => own.has(address));
  }

  /**
   * Why a router that says it is `who`, at `address`, is not: that host's router is linked
   * already (`linked`), from another address, as another run, and answered within the last two
   * heartbeats. A router that restarts closes its old link as it stops (or goes silent with its
   * host), so a link still answering is the host itself, and the newcomer is using its id to
   * speak for it.
   */
  impostor(linked: LinkedHost | undefined, who: Claimed, address: string): string | undefined {
    const line = linked?.lifeline;
    if (!linked?.link || linked.link.closed || !line || linked.instance === who.instance || linked.address === address) return undefined;
    if (Date.now() - line.lastHeard > this.heartbeatMs * 2) return undefined;
    return `it said it is the router of ${linked.name} (${who.hostId}), which is linked from ${linked.address} and answering`;
  }

  /**
   * Another machine goes by this host's id: both would take each other for themselves and never
   * link. Said once a minute, with the fix.
   */
  clash(name: string | undefined, address: string, how: string): BadArgumentsError {
    const { self } = this;
    const error = new BadArgumentsError(
      `host id clash: ${name ?? "a host"} at ${address} (${how}) has this host's id ${self.hostId}` +
        (name === self.name ? ` and its name "${self.name}"` : "") +
        `; the two cannot link. Cloned machines share /etc/machine-id: give one a name of its own (hostnamectl set-hostname),` +
        ` or a new machine id (rm /etc/machine-id && systemd-machine-id-setup), or set [host] id in its labc config`,
    );
    if (Date.now() - this.clashSaidAt > 60_000) {
      this.clashSaidAt = Date.now();
      warn(error.message);
    }
    return error;
  }
}
