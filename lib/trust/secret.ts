import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConfigError } from "../errors.js";

/** What every secret starts with: a secret is recognisable, and its format can change later. */
const PREFIX = "labc1_";
/** 32 random bytes in base64url: never guessable, never derived from a password. */
const FORMAT = /^labc1_[A-Za-z0-9_-]{43}$/;

/** Said once at start by a server or router of an open network (no secret). */
export const OPEN_NETWORK =
  "labc: the network is open (no secret): any host on it may call the public functions here; `labc secret new` closes it (docs/security.md)";

/** A fresh network secret: 256 random bits. */
export function newSecret(): string {
  return PREFIX + randomBytes(32).toString("base64url");
}

export function isSecret(text: string): boolean {
  return FORMAT.test(text.trim());
}

/** How long a secret is after its prefix: 32 bytes in base64url, unpadded. */
const BODY_LENGTH = 43;

/** What each kind of character that a secret never holds is called, first match wins. */
const STRANGE: [RegExp, string][] = [
  [/\s/, "spaces or line breaks"],
  [/["'`]/, "quotes"],
  [/[+/=]/, "+, / or = of plain base64 where a secret is base64url"],
  [/[^\x20-\x7e]/, "non-ASCII characters"],
  [/./, "punctuation"],
];

/**
 * What is wrong with `value`, a text (or TOML value) that is not a secret, without repeating any
 * of it: a near miss (a character lost in a copy, a typo) is nearly the secret itself, and an
 * error message ends up in terminals, logs and bug reports. Lengths and kinds of characters only.
 */
export function secretProblem(value: unknown): string {
  const unrepeated = "; it is not repeated here";
  if (typeof value !== "string") return `it is ${Array.isArray(value) ? "a list" : `a ${typeof value}`}, not a text${unrepeated}`;
  const text = value.trim();
  if (text === "") return "it is empty";
  const problems: string[] = [];
  const prefixed = text.startsWith(PREFIX);
  if (!prefixed) {
    const at = text.indexOf(PREFIX);
    problems.push(`it does not start with ${PREFIX}${at > 0 ? ` (${at} other characters come before it)` : ""}`);
    if (text.length !== PREFIX.length + BODY_LENGTH) {
      problems.push(`it has ${text.length} characters where a secret has ${PREFIX.length + BODY_LENGTH}`);
    }
  } else if (text.length !== PREFIX.length + BODY_LENGTH) {
    problems.push(`it has ${text.length - PREFIX.length} characters after ${PREFIX} where a secret has ${BODY_LENGTH}`);
  }
  const strange = [...(prefixed ? text.slice(PREFIX.length) : text)].filter((c) => !/[A-Za-z0-9_-]/.test(c));
  if (strange.length > 0) {
    // Kinds only: a character's value or place would give away part of a secret typed wrong.
    const kinds = new Set(strange.map((c) => STRANGE.find(([pattern]) => pattern.test(c))![1]));
    problems.push(`${strange.length} of its characters are not letters, digits, - or _ (${[...kinds].join("; ")})`);
  }
  return `${problems.join("; ") || `it is not ${PREFIX} and ${BODY_LENGTH} letters, digits, - or _`}${unrepeated}`;
}

/**
 * The secret's bytes, or a ConfigError naming where the text came from and what is wrong with it
 * (never the text). Only secrets made by `labc secret new` are taken: a passphrase could be
 * guessed offline from one captured handshake.
 */
export function parseSecret(text: string, origin: string): Buffer {
  const trimmed = text.trim();
  if (!isSecret(trimmed)) {
    throw new ConfigError(origin, "network.secret", `not a labc network secret (make one with \`labc secret new\`, copy it whole): ${secretProblem(trimmed)}`);
  }
  return Buffer.from(trimmed.slice(PREFIX.length), "base64url");
}

/** Where `labc secret new` keeps the secret: in the config folder, beside config.toml. */
export function secretFile(configFolder: string): string {
  return join(configFolder, "secret");
}

/** The secret stored in `file`, if there is one. Refuses a file other users can read. */
export function readSecretFile(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  if (process.platform !== "win32" && (statSync(file).mode & 0o077) !== 0) {
    throw new ConfigError(file, undefined, `other users can read this secret: run \`chmod 600 ${file}\` (and make a new one if they may have)`);
  }
  const text = readFileSync(file, "utf8").trim();
  parseSecret(text, file);
  return text;
}

/** Stores a secret readable by its owner only. */
export function writeSecretFile(file: string, secret: string): void {
  mkdirSync(dirname(file), { recursive: true });
  // Whole or not at all: another process may read it at any moment (a rotation ending).
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, `${secret}\n`, { mode: 0o600 });
  // The mode of `writeFileSync` applies to new files only.
  chmodSync(partial, 0o600);
  renameSync(partial, file);
}
