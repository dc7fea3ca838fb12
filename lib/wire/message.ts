/** Message kinds, as numbered on the wire. See docs/protocol.md for each body. */
export const Kind = {
  hello: 1,
  req: 2,
  rep: 3,
  exc: 4,
  pub: 5,
  reqpub: 6,
  announce: 7,
  withdraw: 8,
  pool: 9,
  death: 10,
  ping: 11,
  pong: 12,
  cancel: 13,
  suspect: 14,
  item: 15,
  credit: 16,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export const KIND_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(Kind).map(([name, value]) => [value, name])),
);

/**
 * The function a `req` names to ask a server for a publication one of its subscribers answers
 * (`labc.reqpub`): args `[topic, ...args]`. A request, so that timeouts, cancels and relaying
 * by the routers work as for any call.
 */
export const REQPUB = "labc.reqpub";

/** Version of the message format; a peer speaking another refuses the hello. */
export const PROTOCOL_VERSION = 1;

export type Scope = "server" | "host" | "network";
export const SCOPES: readonly Scope[] = ["server", "host", "network"];
export type Visibility = "public" | "local" | "private" | "secret";
export const VISIBILITIES: readonly Visibility[] = ["public", "local", "private", "secret"];

export type Role = "server" | "client" | "router";

export interface HelloBody {
  v: number;
  role: Role;
  /** The sender's id: a server id, or a client's own id. */
  id: string;
  pid: number;
  /** Host name and stable host id of the sender. */
  host: string;
  hostId: string;
  /** State id of the code the sender runs, when it serves. */
  state?: string;
  /** Realm of the sender's functions ("" or absent: none). */
  realm?: string;
  /** Port the sender's server listens on (servers), or its root port (routers). */
  port?: number;
  /** Ask the router for the pool and every change to it. */
  watch?: boolean;
  /** A server that also takes requests from NATS itself (ServerEntry.nats). */
  nats?: boolean;
}

/** What a router answers to a hello. */
export interface WelcomeBody {
  v: number;
  pid: number;
  host: string;
  hostId: string;
  /** Root port, and an id of this run of the router (a restarted router has a new one). */
  port: number;
  instance: string;
  /** Milliseconds until the router's discovery has had its first chance to find every host. */
  discoveringMs: number;
}

export interface ReqBody {
  fn: string;
  args: unknown[];
  /** For routers: the server to forward the request to, and how long to wait for it. */
  target?: string;
  /** How long the caller waits: the handler's deadline, and (routers) how long to wait for it. */
  timeoutMs?: number;
  /** The caller reads a stream: how many items the server may send before it grants more. */
  credit?: number;
  /** `<traceId>-<spanId>` of the calling side, sent when the caller has hooks (lib/hooks.ts). */
  trace?: string;
}

export interface RepBody {
  v: unknown;
  /** The answer ends a stream (its items came as `item` messages). */
  done?: boolean;
}

export type ExcBody = ErrorPayload;

/** The reader of a stream lets its producer send `n` more items (header id: the request's). */
export interface CreditBody {
  n: number;
}

export interface PubBody {
  topic: string;
  args: unknown[];
  /** For routers: the server to forward the publication to. */
  target?: string;
  /** The queue groups the publisher chose this server for: one of its subscribers in each runs. */
  groups?: string[];
  /** Only `groups` run: the subscribers outside groups get the publication another way (the backplane). */
  groupsOnly?: boolean;
  /** For routers: to every other site, through the backplane of this host's router (docs/backplane.md). */
  gateway?: string;
  /** With `gateway`: a server that must not get it (a reqpub's answering subscriber). */
  except?: string;
}

export interface FunctionEntry {
  name: string;
  scope: Scope;
  visibility: Visibility;
  /** Registered `idempotent: true`: it may run twice for the same arguments. */
  idempotent?: boolean;
  /** Its parameters, when its server could read them: shown by `labc ls --long`, checked on each call. */
  params?: Param[];
}

/** One parameter of a function: `b?: number` is `{ name: "b", type: "number", optional: true }`. */
export interface Param {
  name: string;
  /** As declared in TypeScript (`number`, `Buffer`, `{ x: number }`); absent when not known. */
  type?: string;
  /** Has a default value or a `?`: callers may leave it out. */
  optional?: boolean;
  /** `...rest`: takes every argument from here on. */
  rest?: boolean;
}

/** One server as the pool knows it. */
export interface ServerEntry {
  id: string;
  host: string;
  hostId: string;
  address: string;
  port: number;
  pid: number;
  state?: string;
  realm?: string;
  /** Its router has heard nothing from it lately (frozen, or its event loop blocked). */
  suspect?: boolean;
  /**
   * On another site: the host of this LAN whose router reaches it over the backplane
   * (docs/backplane.md). Such a server is never dialed; its requests go through that router.
   */
  gateway?: string;
  /**
   * It takes requests on its own subject of the backplane (`labc.<realm>.srv.<id>`), being on
   * a gateway's host: a caller on another gateway's host may send them there itself, past both
   * gateways (docs/backplane.md#direct-calls).
   */
  nats?: boolean;
  functions: FunctionEntry[];
  topics: string[];
}

/** Sent by a server to its router (no `server`), and by a router to watchers (with it). */
export interface AnnounceBody {
  server?: ServerEntry;
  functions?: FunctionEntry[];
  topics?: string[];
}

export interface WithdrawBody {
  server?: string;
  functions?: string[];
  topics?: string[];
  /** From a stopping server: answer once every watcher and linked router has applied it. */
  sync?: boolean;
}

export interface PoolBody {
  servers: ServerEntry[];
}

/** A server is gone, or (between routers) a whole host is. */
export interface DeathBody {
  server?: string;
  host?: string;
}

/** A server stopped or started answering its router's heartbeats. */
export interface SuspectBody {
  server: string;
  suspect: boolean;
}

export interface Message {
  kind: Kind;
  id: number;
  // Each kind has its own body type (above); readers narrow by `kind`.
  body: any;
  /** The frame it came in (after the length prefix), for passing it on unchanged. */
  frame?: Buffer;
}

/** How an error travels in an `exc` message. */
export interface ErrorPayload {
  name: string;
  code?: string;
  message: string;
  /** A LabcError's fields, or the own fields of any other error (`details`...). */
  data?: Record<string, unknown>;
  cause?: unknown;
  stack?: string;
}

/** Seen from outside the server: not scope "server", not "secret". */
export function offered(entry: FunctionEntry): boolean {
  return entry.scope !== "server" && entry.visibility !== "secret";
}

/** What other hosts may see and call: network scope, and not local or secret. */
export function exported(entry: FunctionEntry): boolean {
  return offered(entry) && entry.scope === "network" && entry.visibility !== "local";
}
