import { BadArgumentsError, NotPermittedError } from "../lib/errors.js";
import { context } from "../lib/context.js";
import { warn } from "../lib/log.js";
import type { Runtime } from "../lib/runtime/runtime.js";
import type { NetworkKey } from "../lib/trust/network-key.js";
import { applyRotation, openRotation, readRotation, sealRotation, settleRotation, writeRotation, type RotationRecord } from "../lib/trust/rotation.js";

/** Which secret a host uses, as `labc secret status` shows it (core.keys). */
export interface HostKeys {
  host: string;
  hostId: string;
  keyId: string;
  /** During a rotation: the next secret's key id, and when the window ends. */
  nextKeyId?: string;
  until?: number;
}

/** How often a router passes a rotation on to the hosts it sees, during the window. */
const PASS_ON_MS = 3000;

/**
 * A router's part in rotating the network secret (lib/trust/rotation.ts): `core.rotate` takes a
 * record sealed under the current secret from a member, records it for every process of this
 * host (which watch the record) and takes part at once; during the window it passes the record
 * on to every host it sees, every few seconds, so that a host that links late still learns it;
 * once the window ended it writes the new secret into the secret file. `core.keys` says which
 * secret this host uses.
 */
export class RotationDuty {
  private timer: NodeJS.Timeout | undefined;
  private passing = false;

  constructor(
    private readonly control: Runtime,
    private readonly key: NetworkKey | undefined,
    private readonly self: { name: string; hostId: string },
    private readonly configFolder: string,
  ) {}

  keys(): HostKeys {
    const { key, self } = this;
    if (!key) return { host: self.name, hostId: self.hostId, keyId: "" };
    const nextKeyId = key.nextId;
    return { host: self.name, hostId: self.hostId, keyId: key.id, ...(nextKeyId ? { nextKeyId, until: key.rotationEnds } : {}) };
  }

  /** core.rotate(box): a member's rotation, sealed under this network's secret. */
  rotate(box: unknown): HostKeys {
    const { key } = this;
    if (context().fromOtherSite) throw new NotPermittedError("a rotation of the network secret comes from a member of this LAN, not from another site");
    if (!key) throw new NotPermittedError("this host's network is open (no secret): there is no secret to rotate");
    if (typeof box !== "string" || box.length > 4096) throw new BadArgumentsError("core.rotate takes the sealed record `labc secret rotate` makes");
    const record = openRotation(key, box);
    if (!record) {
      if (key.nextId) return this.keys();
      throw new NotPermittedError(`the rotation was not sealed with this host's network secret (key id ${key.id})`);
    }
    if (record.until <= Date.now()) throw new BadArgumentsError("the rotation's window has ended");
    if (key.nextId === undefined) {
      writeRotation(this.configFolder, record);
      applyRotation(key, this.configFolder);
      warn(`labc router: the network secret rotates to key id ${key.nextId} until ${new Date(record.until).toISOString()} (started by ${record.by}); both count until then`);
    }
    return this.keys();
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), PASS_ON_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    try {
      const said = settleRotation(this.configFolder);
      if (said) warn(`labc router: ${said}`);
    } catch (error) {
      warn("labc router: the rotation's end", error);
    }
    const record = this.ongoing();
    if (!record || this.passing || !this.key) return;
    // Hosts that have it already answer at once; the others learn it (the call is idempotent).
    this.passing = true;
    this.control
      .callAll("core.rotate", [sealRotation(this.key, record)], { timeoutMs: PASS_ON_MS })
      .catch(() => [])
      .finally(() => (this.passing = false));
  }

  /** The rotation this host takes part in, while its window lasts. */
  private ongoing(): RotationRecord | undefined {
    if (!this.key?.nextId) return undefined;
    try {
      const record = readRotation(this.configFolder);
      return record && record.until > Date.now() ? record : undefined;
    } catch {
      return undefined;
    }
  }
}
