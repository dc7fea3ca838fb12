import { Kind, SCOPES, VISIBILITIES } from "./message.js";

/**
 * Checks a decoded body against its kind (docs/protocol.md) before any other code reads it, so
 * that a peer's mistakes or malice end here as a typed refusal instead of a TypeError deep in
 * the router, or an entry in the pool that breaks a listing. Returns what is wrong, or
 * undefined. Fields beyond those documented are allowed (a newer peer may send more).
 */
export function problemWith(kind: Kind, body: Record<string, unknown>): string | undefined {
  const check = SCHEMAS[kind];
  return check ? check(body, "") : undefined;
}

type Check = (value: unknown, path: string) => string | undefined;

/** Strings carried in messages: names, ids, hosts. Long enough for any real one. */
const MAX_NAME = 1024;

const str: Check = (v, path) =>
  typeof v !== "string" ? `${path} must be a string` : v.length > MAX_NAME ? `${path} is over ${MAX_NAME} characters` : undefined;
const nonEmpty: Check = (v, path) => str(v, path) ?? (v === "" ? `${path} must not be empty` : undefined);
const text: Check = (v, path) => (typeof v === "string" ? undefined : `${path} must be a string`);
const bool: Check = (v, path) => (typeof v === "boolean" ? undefined : `${path} must be true or false`);
const whole: Check = (v, path) => (Number.isInteger(v) && (v as number) >= 0 ? undefined : `${path} must be a whole number`);
/** A number of stream items: whole, at least 1, at most 2^31. */
const count: Check = (v, path) => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 2 ** 31 ? undefined : `${path} must be a whole number from 1 to 2^31`);
const port: Check = (v, path) => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535 ? undefined : `${path} must be a port`);
const ms: Check = (v, path) => (typeof v === "number" && v >= 0 ? undefined : `${path} must be a number of milliseconds`);
const array: Check = (v, path) => (Array.isArray(v) ? undefined : `${path} must be an array`);
const object: Check = (v, path) =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? undefined : `${path} must be an object`;
const oneOf =
  (values: readonly string[]): Check =>
  (v, path) =>
    values.includes(v as string) ? undefined : `${path} must be one of ${values.join(", ")}`;
const listOf =
  (item: Check): Check =>
  (v, path) => {
    if (!Array.isArray(v)) return `${path} must be an array`;
    for (let i = 0; i < v.length; i++) {
      const problem = item(v[i], `${path}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  };

/** An object with these fields; a `?` after a name makes it optional (absent or null). */
function shape(fields: Record<string, Check>): Check {
  const entries = Object.entries(fields).map(([name, check]) => {
    const optional = name.endsWith("?");
    return [optional ? name.slice(0, -1) : name, check, optional] as const;
  });
  return (v, path) => {
    const notObject = object(v, path);
    if (notObject) return notObject;
    const record = v as Record<string, unknown>;
    for (const [name, check, optional] of entries) {
      const value = record[name];
      if (value === undefined || value === null) {
        if (optional) continue;
        return `${path ? `${path}.` : ""}${name} is missing`;
      }
      const problem = check(value, path ? `${path}.${name}` : name);
      if (problem) return problem;
    }
    return undefined;
  };
}

const param = shape({ name: nonEmpty, "type?": str, "optional?": bool, "rest?": bool });
const functionEntry = shape({
  name: nonEmpty,
  scope: oneOf(SCOPES),
  visibility: oneOf(VISIBILITIES),
  "idempotent?": bool,
  "params?": listOf(param),
});
const serverEntry = shape({
  id: nonEmpty,
  host: str,
  hostId: nonEmpty,
  address: str,
  port: port,
  pid: whole,
  "state?": str,
  "realm?": str,
  "suspect?": bool,
  "gateway?": nonEmpty,
  "nats?": bool,
  functions: listOf(functionEntry),
  topics: listOf(nonEmpty),
});

/**
 * A check that first asks `usual` whether the body is the common one, valid as it stands (a
 * plain call or publication: a name and arguments, none of the optional fields but a call's
 * timeout and, passed on by the routers, its target), and runs the
 * whole `check` only when not (then also for an optional field that is null).
 * Requests and publications are most of what a connection reads: the generic walk over every
 * optional field was a sixth of a subscriber's time per publication.
 */
function common(usual: (v: Record<string, unknown>) => boolean, check: Check): Check {
  return (v, path) => (typeof v === "object" && v !== null && usual(v as Record<string, unknown>) ? undefined : check(v, path));
}

const name = (v: unknown): boolean => typeof v === "string" && v.length > 0 && v.length <= MAX_NAME;

/** Built once: a check runs on every message. */
const SCHEMAS: Partial<Record<Kind, Check>> = {
  [Kind.hello]: shape({
    v: whole,
    role: oneOf(["server", "client", "router"]),
    id: nonEmpty,
    pid: whole,
    host: str,
    // A client may know nothing of its host yet (""); a router's is checked where it links.
    hostId: str,
    "state?": str,
    "realm?": str,
    "port?": port,
    "watch?": bool,
    "nats?": bool,
  }),
  [Kind.req]: common(
    (v) =>
      name(v.fn) &&
      Array.isArray(v.args) &&
      (v.timeoutMs === undefined || (typeof v.timeoutMs === "number" && v.timeoutMs >= 0)) &&
      (v.target === undefined || name(v.target)) &&
      v.credit === undefined &&
      v.trace === undefined,
    shape({ fn: nonEmpty, args: array, "target?": nonEmpty, "timeoutMs?": ms, "credit?": count, "trace?": str }),
  ),
  [Kind.credit]: shape({ n: count }),
  [Kind.exc]: shape({ name: str, message: text, "code?": str, "data?": object, "stack?": text }),
  [Kind.pub]: common(
    (v) =>
      name(v.topic) &&
      Array.isArray(v.args) &&
      v.target === undefined &&
      v.groups === undefined &&
      v.groupsOnly === undefined &&
      v.gateway === undefined &&
      v.except === undefined,
    shape({
      topic: nonEmpty,
      args: array,
      "target?": nonEmpty,
      "groups?": listOf(nonEmpty),
      "groupsOnly?": bool,
      "gateway?": nonEmpty,
      "except?": nonEmpty,
    }),
  ),
  // From a server: what it adds; from a router: the server entry holding what was added.
  [Kind.announce]: shape({ "server?": serverEntry, "functions?": listOf(functionEntry), "topics?": listOf(nonEmpty) }),
  [Kind.withdraw]: shape({ "server?": nonEmpty, "functions?": listOf(nonEmpty), "topics?": listOf(nonEmpty), "sync?": bool }),
  [Kind.pool]: shape({ servers: listOf(serverEntry) }),
  [Kind.death]: shape({ "server?": nonEmpty, "host?": nonEmpty }),
  [Kind.suspect]: shape({ server: nonEmpty, suspect: bool }),
};
