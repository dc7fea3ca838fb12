import { exported } from "../wire/message.js";
import type { FunctionPool, PoolServer } from "./function-pool.js";
import type { ServerEntry } from "../wire/message.js";

/**
 * Who makes a claim about servers, and what this router knows to check it against: a router of
 * this LAN over its link (`link`: the host id it said hello as), or another site on the NATS
 * backplane (`site`: its gateway's host id, as its listing's subject says).
 */
export interface Speaker {
  kind: "link" | "site";
  hostId: string;
  /** This router's host id. */
  self: string;
  /** Whether a host id is one of this LAN (this host, or a host this router links or linked to). */
  lanHost: (hostId: string) => boolean;
  /** Whether a server already in the pool is the speaker's to speak of (its own, or one it listed before). */
  owns: (server: PoolServer) => boolean;
}

/**
 * Why an entry a router link or another site sends may not enter the pool, or undefined when it
 * may. What a speaker says is bound to who it is: a link speaks for servers on its own host and,
 * a gateway of this LAN, for other sites' servers marked as reached through it; another site
 * never speaks for a host of this LAN. An id already in the pool stays its owner's (ids of this
 * host's servers belong to this host). Only functions that may leave their host are offered
 * (scope `network`, visibility `public` or `private`): a genuine router or gateway sends
 * nothing else, and what `local` or `host` allows is decided by the server's host id, which is
 * exactly what a liar would set to this host's.
 */
export function claimProblem(entry: ServerEntry, speaker: Speaker, pool: FunctionPool): string | undefined {
  const { hostId, gateway } = entry;
  if (speaker.kind === "link") {
    if (gateway === undefined && hostId !== speaker.hostId) return `it announced server ${entry.id} on host ${hostId}, which is not its own (${speaker.hostId})`;
    if (gateway !== undefined && gateway !== speaker.hostId) return `it announced server ${entry.id} as reached through host ${gateway}, not through itself`;
  }
  // Another site's server: on a host of no LAN this router knows (a link's own servers are not marked so).
  const otherSite = speaker.kind === "site" || gateway !== undefined;
  if (otherSite && (hostId === speaker.self || speaker.lanHost(hostId) || (speaker.kind === "link" && hostId === speaker.hostId))) {
    return `it listed server ${entry.id} of another site on host ${hostId}, a host of this LAN${hostId === speaker.self ? " (this one)" : ""}`;
  }
  const known = pool.servers.get(entry.id);
  if (known && (!speaker.owns(known) || known.hostId !== hostId)) {
    return `it announced server ${entry.id}, an id taken by a server on host ${known.host} (${known.hostId})`;
  }
  const closed = entry.functions.find((fn) => !exported(fn));
  if (closed) return `it offered ${closed.name} of server ${entry.id} with scope ${closed.scope} and visibility ${closed.visibility}, which never leave their host`;
  return undefined;
}

/** The entries a speaker may make, each other one refused through `refuse` (once per entry). */
export function admitted(entries: ServerEntry[], speaker: Speaker, pool: FunctionPool, refuse: (why: string) => void): ServerEntry[] {
  return entries.filter((entry) => {
    const problem = claimProblem(entry, speaker, pool);
    if (problem) refuse(problem);
    return problem === undefined;
  });
}
