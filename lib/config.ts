import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { hostname, homedir } from "node:os";
import { join, resolve } from "node:path";
import type * as Toml from "smol-toml";
import { ConfigError } from "./errors.js";
import { localSocketsIn, type LocalSockets } from "./net/local-sockets.js";
import { networkKey, type NetworkKey } from "./trust/network-key.js";
import { applyRotation } from "./trust/rotation.js";
import { isSecret, readSecretFile, secretFile, secretProblem } from "./trust/secret.js";
import { ByteBudget } from "./wire/byte-budget.js";
import { DEFAULT_LIMITS, type Limits } from "./wire/limits.js";
import { SCOPES } from "./wire/message.js";

type Type = "string" | "text" | "port" | "seconds" | "bytes" | "boolean" | "scope" | "count" | "strings" | "dotted" | "secret";

interface KeySpec {
  type: Type;
  default: string | number | boolean | readonly string[];
}

/** Every configuration key, its type and its default. config.example.toml documents each. */
const KEYS = {
  "host.name": { type: "string", default: hostname() },
  "host.id": { type: "dotted", default: "" },
  "router.port": { type: "port", default: 55555 },
  "router.address": { type: "string", default: "127.0.0.1" },
  "router.linger": { type: "seconds", default: 60 },
  "server.address": { type: "string", default: "0.0.0.0" },
  "network.listen": { type: "string", default: "0.0.0.0" },
  "network.heartbeat": { type: "seconds", default: 0.5 },
  "network.suspect_after": { type: "count", default: 2 },
  "network.dead_after": { type: "count", default: 4 },
  "network.realm": { type: "dotted", default: "" },
  "network.secret": { type: "secret", default: "" },
  "network.local_proof": { type: "boolean", default: true },
  "network.local_sockets": { type: "boolean", default: false },
  "service_control.remote": { type: "boolean", default: false },
  "service_control.python": { type: "text", default: "python3" },
  "discovery.enabled": { type: "boolean", default: true },
  "discovery.mdns": { type: "boolean", default: true },
  "discovery.udp": { type: "boolean", default: true },
  "discovery.beacon_interval": { type: "seconds", default: 1 },
  "discovery.interfaces": { type: "strings", default: [] },
  "discovery.peers": { type: "strings", default: [] },
  "call.timeout": { type: "seconds", default: 30 },
  "call.scope": { type: "scope", default: "network" },
  "metrics.enabled": { type: "boolean", default: true },
  "http.enabled": { type: "boolean", default: false },
  "http.address": { type: "string", default: "127.0.0.1" },
  "http.port": { type: "port", default: 55580 },
  "wire.max_frame_size": { type: "bytes", default: 64 * 1024 * 1024 },
  "limits.partial_frames": { type: "bytes", default: 128 * 1024 * 1024 },
  "limits.in_flight": { type: "count", default: 1024 },
  "limits.unsent": { type: "bytes", default: 8 * 1024 * 1024 },
  "limits.queued": { type: "bytes", default: 256 * 1024 * 1024 },
  "limits.frame_timeout": { type: "seconds", default: 30 },
  "limits.hello_timeout": { type: "seconds", default: 10 },
  "limits.connections_per_address": { type: "count", default: 1000 },
  "server.drain_timeout": { type: "seconds", default: 10 },
  // Read by Python servers (clients/python): the threads their served functions run on.
  "server.threads": { type: "count", default: 16 },
  "errors.send_stack": { type: "boolean", default: false },
  "backplane.nats": { type: "strings", default: [] },
  "backplane.realm": { type: "dotted", default: "main" },
  "backplane.heartbeat": { type: "seconds", default: 1 },
  "backplane.relink": { type: "seconds", default: 10 },
  "backplane.user": { type: "text", default: "" },
  "backplane.pass": { type: "text", default: "" },
  "backplane.token": { type: "text", default: "" },
  "backplane.creds": { type: "text", default: "" },
  "backplane.tls_ca": { type: "text", default: "" },
  "backplane.tls_cert": { type: "text", default: "" },
  "backplane.tls_key": { type: "text", default: "" },
} as const satisfies Record<string, KeySpec>;

export type ConfigKey = keyof typeof KEYS;
type ValueOf<T extends Type> = T extends "string" | "text" | "scope" | "dotted" | "secret"
  ? string
  : T extends "boolean"
    ? boolean
    : T extends "strings"
      ? string[]
      : number;
export type Config = { -readonly [K in ConfigKey]: ValueOf<(typeof KEYS)[K]["type"]> } & {
  "call.scope": "server" | "host" | "network";
};

export const CONFIG_KEYS = Object.keys(KEYS) as ConfigKey[];

/**
 * Keys whose value is a secret: never shown (`labc config`, errors), never taken from a
 * command-line flag (every user of the computer reads arguments in `ps`), and a file holding one
 * must be its owner's alone. `backplane.creds` and the TLS keys are paths to files, not secrets.
 */
export const SECRET_KEYS: readonly ConfigKey[] = ["network.secret", "backplane.pass", "backplane.token"];

export interface LoadedConfig {
  values: Config;
  /** Where each value came from: "default", a file path, "env LABC_X" or "flag". */
  sources: Record<ConfigKey, string>;
  /** `[services.<Name>]` tables: a service's own settings, by service (class) name. */
  services: Record<string, ServiceSettings>;
}

/** A service's table: `restart` and `needs` are labc's, the rest goes to its constructor. */
export interface ServiceSettings {
  restart?: "no" | "on-failure";
  needs?: string[];
  options: Record<string, unknown>;
}

function serviceSettings(file: string, name: string, table: unknown): ServiceSettings {
  if (typeof table !== "object" || table === null || Array.isArray(table)) {
    throw new ConfigError(file, `services.${name}`, "expected a table such as [services.LightControl]");
  }
  const { restart, needs, ...options } = table as Record<string, unknown>;
  if (restart !== undefined && restart !== "no" && restart !== "on-failure") {
    throw new ConfigError(file, `services.${name}.restart`, `expected "no" or "on-failure", got ${JSON.stringify(restart)}`);
  }
  if (needs !== undefined && !(Array.isArray(needs) && needs.every((n) => typeof n === "string"))) {
    throw new ConfigError(file, `services.${name}.needs`, `expected a list of service names, got ${JSON.stringify(needs)}`);
  }
  return { restart: restart as ServiceSettings["restart"], needs: needs as string[] | undefined, options };
}

export function envName(key: ConfigKey): string {
  return `LABC_${key.replace(/\./g, "_").toUpperCase()}`;
}

/** `$XDG_CONFIG_HOME/labc`, else `~/.config/labc`. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "labc");
}

/** `$XDG_CACHE_HOME/labc`, else `~/.cache/labc`: services compiled to JavaScript. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "labc");
}

/** `$XDG_STATE_HOME/labc`, else `~/.local/state/labc`: logs of background processes. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "labc");
}

const EXPECTED: Record<Type, string> = {
  string: "a non-empty string",
  text: 'a string ("" for none)',
  port: "a port number from 0 to 65535",
  seconds: "a number of seconds, 0 or more",
  bytes: "a whole number of bytes, 1024 or more",
  boolean: "true or false",
  scope: `one of ${SCOPES.join(", ")}`,
  count: "a whole number, 1 or more",
  strings: "a list of strings (in variables and flags: separated by commas)",
  dotted: 'dot-separated words of letters, digits, "-" and "_" (or "" for none)',
  secret: "a secret made by `labc secret new` (labc1_ and 43 more characters), or \"\" for none",
};

function coerce(type: Type, raw: unknown, fromText: boolean): string | number | boolean | string[] | undefined {
  let value = raw;
  if (fromText && typeof raw === "string" && type === "strings") {
    value = raw.split(",").map((item) => item.trim()).filter(Boolean);
  } else if (fromText && typeof raw === "string" && type !== "string" && type !== "text" && type !== "scope" && type !== "dotted" && type !== "secret") {
    if (type === "boolean") {
      const text = raw.trim().toLowerCase();
      value = ["true", "1", "yes", "on"].includes(text) ? true : ["false", "0", "no", "off"].includes(text) ? false : raw;
    } else if (raw.trim() !== "") {
      value = Number(raw);
    }
  }
  switch (type) {
    case "string":
      return typeof value === "string" && value !== "" ? value : undefined;
    case "text":
      return typeof value === "string" ? value : undefined;
    case "scope":
      return typeof value === "string" && (SCOPES as readonly string[]).includes(value) ? value : undefined;
    case "boolean":
      return typeof value === "boolean" ? value : undefined;
    case "port":
      return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 65535 ? (value as number) : undefined;
    case "seconds":
      return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;
    case "bytes":
      return Number.isInteger(value) && (value as number) >= 1024 ? (value as number) : undefined;
    case "count":
      return Number.isInteger(value) && (value as number) >= 1 ? (value as number) : undefined;
    case "strings":
      return Array.isArray(value) && value.every((item) => typeof item === "string" && item !== "")
        ? (value as string[])
        : undefined;
    case "dotted":
      return typeof value === "string" && /^([\w-]+(\.[\w-]+)*)?$/.test(value) ? value : undefined;
    case "secret":
      return typeof value === "string" && (value.trim() === "" || isSecret(value)) ? value.trim() : undefined;
  }
}

function set(
  loaded: LoadedConfig,
  key: string,
  raw: unknown,
  origin: string,
  fromText: boolean,
): void {
  if (!(key in KEYS)) {
    throw new ConfigError(origin, key, `unknown key (known keys: ${CONFIG_KEYS.join(", ")})`);
  }
  const spec: KeySpec = KEYS[key as ConfigKey];
  const value = coerce(spec.type, raw, fromText);
  if (value === undefined) {
    // A secret typed wrong is nearly the secret: say what is wrong with it, never what it is.
    const got =
      spec.type === "secret"
        ? `: ${secretProblem(raw)}`
        : SECRET_KEYS.includes(key as ConfigKey)
          ? `, got ${Array.isArray(raw) ? "a list" : `a ${typeof raw}`} (not repeated here)`
          : `, got ${JSON.stringify(raw)}`;
    throw new ConfigError(origin, key, `expected ${EXPECTED[spec.type]}${got}`);
  }
  (loaded.values as Record<string, unknown>)[key] = value;
  loaded.sources[key as ConfigKey] = origin;
}

// The TOML parser is loaded when a file is there to read, not at start: a command on a host with
// no config file (most of them) is spared it. Required rather than imported: loadConfig is
// synchronous, and require is how a module is loaded on demand without an await.
let toml: typeof Toml | undefined;
const tomlParser = () => (toml ??= createRequire(import.meta.url)("smol-toml") as typeof Toml);

function readFile(loaded: LoadedConfig, file: string): void {
  if (!existsSync(file)) return;
  const { parse, TomlError } = tomlParser();
  let document: Record<string, unknown>;
  try {
    document = parse(readFileSync(file, "utf8"));
  } catch (error) {
    const where = error instanceof TomlError ? ` (line ${error.line}, column ${error.column})` : "";
    throw new ConfigError(file, undefined, `not valid TOML${where}: ${(error as Error).message.split("\n")[0]}`);
  }
  const held = SECRET_KEYS.find((key) => {
    const [table, name] = key.split(".") as [string, string];
    return Boolean((document[table] as Record<string, unknown> | undefined)?.[name]);
  });
  if (held && process.platform !== "win32" && (statSync(file).mode & 0o077) !== 0) {
    throw new ConfigError(file, held, `other users can read this file, and it holds a secret (${held}): run \`chmod 600 ${file}\``);
  }
  for (const [table, entries] of Object.entries(document)) {
    if (typeof entries !== "object" || entries === null || Array.isArray(entries)) {
      throw new ConfigError(file, table, "expected a table such as [router]");
    }
    if (table === "services") {
      for (const [name, settings] of Object.entries(entries)) loaded.services[name] = serviceSettings(file, name, settings);
      continue;
    }
    for (const [name, raw] of Object.entries(entries)) set(loaded, `${table}.${name}`, raw, file, false);
  }
}

/** `[backplane]` of the config: where NATS is and how to log in (docs/backplane.md). */
export interface BackplaneSettings {
  servers: string[];
  realm: string;
  user?: string;
  pass?: string;
  token?: string;
  /** A `.creds` file (JWT and NKey seed). */
  creds?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Milliseconds between a gateway's beats; a site is suspect after 2 missed, gone after 4. */
  heartbeatMs: number;
  /** Milliseconds before a process tries NATS again after its link failed, and between a server's tries after its link was lost. */
  relinkMs: number;
  /** The labc network has a secret: a NATS server that asks for no credentials is worth a warning. */
  guarded?: boolean;
}

/** `[backplane]` as the router takes it; undefined when no NATS server is set. */
export function backplaneSettings(config: Config, guarded: boolean): BackplaneSettings | undefined {
  if (config["backplane.nats"].length === 0) return undefined;
  const text = (key: ConfigKey) => (config[key] as string) || undefined;
  return {
    servers: config["backplane.nats"],
    realm: config["backplane.realm"] || "main",
    heartbeatMs: Math.max(0.1, config["backplane.heartbeat"]) * 1000,
    relinkMs: Math.max(0.1, config["backplane.relink"]) * 1000,
    guarded,
    user: text("backplane.user"),
    pass: text("backplane.pass"),
    token: text("backplane.token"),
    creds: text("backplane.creds"),
    tls: { caFile: text("backplane.tls_ca"), certFile: text("backplane.tls_cert"), keyFile: text("backplane.tls_key") },
  };
}

/**
 * Builds the effective configuration: defaults < `configDir()/config.toml` < `./labc.toml` <
 * `LABC_*` environment variables < `flags` (keys as in the file: `{"router.port": 6000}`).
 */
export function loadConfig(
  options: { flags?: Partial<Record<ConfigKey, unknown>>; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): LoadedConfig {
  const env = options.env ?? process.env;
  const loaded = {
    values: Object.fromEntries(
      CONFIG_KEYS.map((key) => {
        const value: KeySpec["default"] = KEYS[key].default;
        return [key, Array.isArray(value) ? [...value] : value];
      }),
    ),
    sources: Object.fromEntries(CONFIG_KEYS.map((key) => [key, "default"])),
    services: {},
  } as LoadedConfig;
  readFile(loaded, join(configDir(env), "config.toml"));
  readFile(loaded, resolve(options.cwd ?? process.cwd(), "labc.toml"));
  for (const key of CONFIG_KEYS) {
    const raw = env[envName(key)];
    if (raw !== undefined && raw !== "") set(loaded, key, raw, `env ${envName(key)}`, true);
  }
  // The short name the docs give; LABC_NETWORK_SECRET works too (and wins).
  if (env.LABC_SECRET && !env[envName("network.secret")]) {
    set(loaded, "network.secret", env.LABC_SECRET, "env LABC_SECRET", true);
  }
  for (const [key, raw] of Object.entries(options.flags ?? {})) {
    if (raw !== undefined) set(loaded, key, raw, "flag", typeof raw === "string");
  }
  if (!loaded.values["network.secret"]) {
    // What `labc secret new` stored, unless something above set one.
    const file = secretFile(configDir(env));
    const secret = readSecretFile(file);
    if (secret) {
      loaded.values["network.secret"] = secret;
      loaded.sources["network.secret"] = file;
    }
  }
  return loaded;
}

/** The limits a configuration asks for, with a partial-frame budget of their own. */
export function limitsFrom(config: Config): Limits {
  const maxFrameBytes = config["wire.max_frame_size"];
  return {
    ...DEFAULT_LIMITS,
    maxFrameBytes,
    partialFrames: new ByteBudget(config["limits.partial_frames"]),
    maxInFlight: config["limits.in_flight"],
    maxUnsentBytes: config["limits.unsent"],
    // One frame of the largest size must always fit in what a slow peer may have queued.
    maxQueuedBytes: Math.max(config["limits.queued"], 2 * maxFrameBytes),
    frameTimeoutMs: config["limits.frame_timeout"] * 1000,
    helloTimeoutMs: config["limits.hello_timeout"] * 1000,
    maxConnectionsPerAddress: config["limits.connections_per_address"],
  };
}

/** The network's key, from the configured secret; undefined in an open network. */
export function keyOf(config: Config): NetworkKey | undefined {
  const secret = config["network.secret"];
  if (!secret) return undefined;
  const key = networkKey(secret);
  key.localProof = config["network.local_proof"];
  // A rotation recorded on this host (trust/rotation.ts) applies to every process of it.
  applyRotation(key, configDir());
  return key;
}

const socketsOf = new Map<string, LocalSockets | undefined>();
/** This host's Unix sockets for its own links (lib/net/local-sockets.ts) when `network.local_sockets` is true and the folder can be kept private. */
export function localSocketsOf(config: Config): LocalSockets | undefined {
  if (!config["network.local_sockets"]) return undefined;
  const dir = stateDir();
  if (!socketsOf.has(dir)) socketsOf.set(dir, localSocketsIn(dir));
  return socketsOf.get(dir);
}
