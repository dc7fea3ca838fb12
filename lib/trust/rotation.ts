import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.js";
import { derive, keyIdOf, type NetworkKey } from "./network-key.js";
import { isSecret, readSecretFile, secretFile, writeSecretFile } from "./secret.js";

/**
 * A rotation of the network secret without a gap (`labc secret rotate`): every host learns the
 * next secret under the current one, and until the window's end every process takes links
 * proved with either, dialing with the next first (network-key.ts); from then on only the next
 * counts. The record stays in the config folder (mode 0600, as the secret) after the window, so
 * that a process started with the old secret (in its environment) moves on too.
 */
export interface RotationRecord {
  /** The next secret. */
  next: string;
  /** Key id of the secret it replaces. */
  from: string;
  /** When the old secret stops counting (ms since the epoch). */
  until: number;
  /** Which host started it, and when. */
  by: string;
  at: number;
}

export function rotationFile(configFolder: string): string {
  return join(configFolder, "secret-rotation.json");
}

/** The rotation recorded on this host, if any. Refuses a record others can read (it holds a secret). */
export function readRotation(configFolder: string): RotationRecord | undefined {
  const file = rotationFile(configFolder);
  if (!existsSync(file)) return undefined;
  if (process.platform !== "win32" && (statSync(file).mode & 0o077) !== 0) {
    throw new ConfigError(file, undefined, `other users can read this file, which holds a secret: run \`chmod 600 ${file}\``);
  }
  try {
    const record = JSON.parse(readFileSync(file, "utf8")) as RotationRecord;
    if (isSecret(record.next) && typeof record.from === "string" && Number.isSafeInteger(record.until)) return record;
  } catch {
    // a record cut short: as none
  }
  return undefined;
}

/** Writes the record readable by its owner only, whole or not at all (a rename). */
export function writeRotation(configFolder: string, record: RotationRecord): void {
  const file = rotationFile(configFolder);
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  renameSync(partial, file);
}

/** Makes `key` take part in the rotation recorded here, if it rotates from that key's secret. */
export function applyRotation(key: NetworkKey, configFolder: string): RotationRecord | undefined {
  let record: RotationRecord | undefined;
  try {
    record = readRotation(configFolder);
  } catch {
    return undefined;
  }
  if (!record) return undefined;
  if (record.from === key.id) key.rotate(record.next, record.until);
  if (Date.now() >= record.until) {
    try {
      // No router may run to do it: whichever process sees the window ended first does.
      settleRotation(configFolder);
    } catch {
      // the router says why, on its next look
    }
  }
  return record;
}

/**
 * Once a window ended: the secret file, if it still holds the old secret, gets the new one.
 * Says what it did, or why the file was left (the secret comes from elsewhere), or nothing.
 */
export function settleRotation(configFolder: string, now = Date.now()): string | undefined {
  const record = readRotation(configFolder);
  if (!record || now < record.until) return undefined;
  const file = secretFile(configFolder);
  const stored = readSecretFile(file);
  const nextId = keyIdOf(record.next);
  if (stored && keyIdOf(stored) === nextId) return undefined;
  if (!stored || keyIdOf(stored) !== record.from) {
    return `the network moved to key id ${nextId}; ${file} does not hold the old secret, so this host's secret comes from LABC_SECRET or a config file: put the new one there (\`labc secret show\`)`;
  }
  writeSecretFile(file, record.next);
  return `the network moved to key id ${nextId}: ${file} holds the new secret`;
}

/** Polls the record every `intervalMs` (a rotation other processes learned); returns the stop. */
export function watchRotation(key: NetworkKey, configFolder: string, intervalMs = 2000): () => void {
  let seen = 0;
  const timer = setInterval(() => {
    try {
      const mtime = statSync(rotationFile(configFolder)).mtimeMs;
      if (mtime === seen) return;
      seen = mtime;
    } catch {
      return;
    }
    applyRotation(key, configFolder);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

const AAD = Buffer.from("labc rotation 1");

/**
 * The record as it travels to other hosts' routers: sealed (AES-256-GCM) under a key derived
 * from the secret in force, so that only a holder of that secret can start a rotation, and only
 * holders can read it, whatever carries it (a router link is TLS under it too).
 */
export function sealRotation(key: NetworkKey, record: RotationRecord): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", derive(key.secretBytes(), "rotation seal"), iv).setAAD(AAD);
  const body = Buffer.concat([cipher.update(JSON.stringify(record)), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
}

/** The record in a sealed box, or undefined when it was not sealed under this key's secret. */
export function openRotation(key: NetworkKey, box: string): RotationRecord | undefined {
  const bytes = Buffer.from(box, "base64url");
  if (bytes.length < 12 + 16) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", derive(key.secretBytes(), "rotation seal"), bytes.subarray(0, 12)).setAAD(AAD).setAuthTag(bytes.subarray(-16));
    const plain = Buffer.concat([decipher.update(bytes.subarray(12, -16)), decipher.final()]);
    const record = JSON.parse(plain.toString("utf8")) as RotationRecord;
    return isSecret(record.next) && record.from === key.id && Number.isSafeInteger(record.until) ? record : undefined;
  } catch {
    return undefined;
  }
}
