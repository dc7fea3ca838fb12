import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { debug } from "../log.js";
import type { Discovery, Sighting } from "./discovery.js";

interface Known {
  name: string;
  addresses: string[];
  port: number;
  lastSeen: number;
}

/** Forget a host not seen for this long. */
const FORGET_AFTER_MS = 30 * 24 * 3600 * 1000;

/**
 * Hosts linked before, kept in a file of the config folder and tried again at start: a host
 * that found its peers once finds them again at once, even where discovery is switched off.
 */
export class KnownHosts implements Discovery {
  readonly method = "known" as const;
  private readonly hosts = new Map<string, Known>();
  private saveTimer: NodeJS.Timeout | null = null;

  constructor(private readonly file: string) {
    try {
      const saved = JSON.parse(readFileSync(file, "utf8")) as Record<string, Known>;
      for (const [hostId, known] of Object.entries(saved)) {
        if (Date.now() - known.lastSeen < FORGET_AFTER_MS) this.hosts.set(hostId, known);
      }
    } catch {
      // no file yet, or an unreadable one: start empty
    }
  }

  start(found: (sighting: Sighting) => void): void {
    for (const [hostId, known] of this.hosts) {
      found({ hostId, name: known.name, addresses: known.addresses, port: known.port, via: "known" });
    }
  }

  stop(): void {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.save();
    }
  }

  remember(hostId: string, name: string, addresses: string[], port: number): void {
    this.hosts.set(hostId, { name, addresses, port, lastSeen: Date.now() });
    this.saveTimer ??= setTimeout(() => this.save(), 1000).unref();
  }

  private save(): void {
    this.saveTimer = null;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(`${this.file}.tmp`, JSON.stringify(Object.fromEntries(this.hosts), null, 2));
      renameSync(`${this.file}.tmp`, this.file);
    } catch (error) {
      debug("known hosts not saved: %s", (error as Error).message);
    }
  }
}
