import type { ProcessMetrics } from "../metrics.js";

/**
 * What a router answers of its own (`labc.hosts`, `labc.metrics`): the types both sides read,
 * the router that makes them and the processes and CLI that show them.
 */

/** Where a host stands, as its router last heard it. */
export type HostState = "alive" | "suspect" | "dead" | "self" | "connecting";

export interface HostInfo {
  hostId: string;
  name: string;
  addresses: string[];
  port: number;
  state: HostState;
  /** Milliseconds since anything was heard from it (null: never, or this host). */
  lastHeardMs: number | null;
  servers: number;
  functions: number;
  /** On another site (docs/backplane.md): the name of its gateway, where known, */
  site?: string;
  /** and the host of this LAN whose backplane reaches it. */
  gateway?: string;
}

/** What `labc metrics` shows of a host. */
export interface HostMetrics {
  host: string;
  hostId: string;
  processes: ProcessMetrics[];
}

/** What `labc hosts` says of a gateway's backplane. */
export interface BackplaneStatus {
  linked: boolean;
  server: string | undefined;
  realm: string;
  /** Other sites heard. */
  sites: number;
  problem: string | undefined;
}
