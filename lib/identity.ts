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
export function helloFrom(identity: Identity, role: Role, extra: Pick<HelloBody, "port" | "watch" | "nats"> = {}): HelloBody {
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

const hostIds = new Map<string, string>();

/**
 * A stable id for this computer, from the OS machine id and the host's name: machines cloned
 * from one image (Raspberry Pi images, VM templates) share a machine id until someone renews
 * it, and are told apart by the names they were given. Renaming a host gives it a new id.
 */
export function hostId(name: string = hostname()): string {
  const known = hostIds.get(name);
  if (known) return known;
  let machine = "";
  for (const file of ["/etc/machine-id", "/var/lib/dbus/machine-id"]) {
    try {
      machine = readFileSync(file, "utf8").trim();
      if (machine) break;
    } catch {
      // try the next place
    }
  }
  const id = createHash("sha256").update(`labc:${machine}:${name}`).digest("hex").slice(0, 12);
  hostIds.set(name, id);
  return id;
}

/** A fresh id for a server or a caller: unique enough to never meet another on one network. */
export function newId(): string {
  return randomBytes(6).toString("hex");
}
