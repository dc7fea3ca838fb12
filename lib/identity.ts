import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { PROTOCOL_VERSION, type HelloBody, type Role } from "./wire/message.js";

/** Who this process is on the network. */
export interface Identity {
  id: string;
  host: string;
  hostId: string;
  state?: string;
  realm?: string;
}

/** The first message on every connection a process opens: who sends everything that follows. */
export function helloFrom(identity: Identity, role: Role, extra: { port?: number; watch?: boolean } = {}): HelloBody {
  return {
    v: PROTOCOL_VERSION,
    role,
    id: identity.id,
    pid: process.pid,
    host: identity.host,
    hostId: identity.hostId,
    state: identity.state,
    realm: identity.realm || undefined,
    ...extra,
  };
}

let cachedHostId: string | undefined;

/**
 * A stable id for this computer: derived from the OS machine id when there is one (it survives
 * renames and reboots), else from the host name.
 */
export function hostId(): string {
  if (cachedHostId) return cachedHostId;
  let seed = hostname();
  for (const file of ["/etc/machine-id", "/var/lib/dbus/machine-id"]) {
    try {
      seed = readFileSync(file, "utf8").trim() || seed;
      break;
    } catch {
      // try the next place
    }
  }
  return (cachedHostId = createHash("sha256").update(`labc:${seed}`).digest("hex").slice(0, 12));
}

/** A fresh id for a server or a caller: unique enough to never meet another on one network. */
export function newId(): string {
  return randomBytes(6).toString("hex");
}
