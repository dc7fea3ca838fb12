import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";

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
