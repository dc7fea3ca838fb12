import { configDir, keyOf, loadConfig, type ConfigKey } from "../lib/config.js";
import { configure } from "../lib/index.js";
import { newSecret } from "../lib/trust/secret.js";
import { networkKey } from "../lib/trust/network-key.js";
import { sealRotation, writeRotation } from "../lib/trust/rotation.js";
import { UsageError } from "./args.js";
import { table } from "./format.js";
import type { HostKeys } from "./rotation-duty.js";

/** How long old and new secrets both count unless --window says otherwise. */
const DEFAULT_WINDOW_MS = 10 * 60_000;

function windowOf(text: string | undefined): number {
  if (text === undefined) return DEFAULT_WINDOW_MS;
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(text.trim());
  const ms = match ? Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "m") as "s" | "m" | "h"] : NaN;
  if (!(ms >= 5000 && ms <= 7 * 86_400_000)) throw new UsageError(`--window takes a duration from 5s to 7 days (90s, 10m, 2h), not ${JSON.stringify(text).slice(0, 40)}`);
  return ms;
}

const when = (ms: number) => new Date(ms).toLocaleTimeString();

/**
 * `labc secret rotate`: a new secret for the whole network, without a gap. It is sealed under the
 * current secret and handed to every host's router (core.rotate, cli/rotation-duty.ts), which
 * records it for its host's processes and passes it on to hosts that link later; until the
 * window's end every process takes either secret and dials with the new one first; then only
 * the new one counts, and each host's secret file holds it.
 */
export async function runRotate(options: { window?: string; flags: Partial<Record<ConfigKey, unknown>> }): Promise<string> {
  const { values } = loadConfig({ flags: options.flags });
  const key = keyOf(values);
  if (!key) throw new UsageError("the network is open (no secret): `labc secret new` makes one; there is nothing to rotate");
  if (key.nextId) {
    throw new UsageError(`a rotation to key id ${key.nextId} is under way until ${when(key.rotationEnds!)}: \`labc secret status\` shows which hosts have it`);
  }
  const now = Date.now();
  const record = { next: newSecret(), from: key.id, until: now + windowOf(options.window), by: values["host.name"], at: now };
  const box = sealRotation(key, record);
  const labc = configure(options.flags);
  let answers;
  try {
    await labc.admin.ready();
    answers = await labc.network.callAll("core.rotate", box);
  } finally {
    await labc.close();
  }
  // This host's processes learn it from the record even if its router did not answer.
  writeRotation(configDir(), record);
  const rows = answers.map((a) => [a.host, a.error ? `not reached: ${a.error.message}` : `has key id ${(a.value as HostKeys).nextKeyId ?? "?"}`]);
  const nextId = networkKey(record.next).id;
  return (
    `labc: the network secret rotates from key id ${key.id} to ${nextId}; both count until ${when(record.until)}, then only the new one.\n` +
    `${table(["HOST", "NEW SECRET"], rows)}\n` +
    "Every process moves over by itself; routers pass the new secret on to hosts that link before then. `labc secret status` shows the hosts.\n" +
    "A host that is off until after then: `labc invite` on a member, `labc join --force` there.\n"
  );
}

/** `labc secret status`: which secret each host answering uses, and any rotation under way. */
export async function runSecretStatus(flags: Partial<Record<ConfigKey, unknown>>): Promise<string> {
  const { values } = loadConfig({ flags });
  const key = keyOf(values);
  if (!key) return "labc: the network is open (no secret)\n";
  const labc = configure(flags);
  let answers;
  try {
    await labc.admin.ready();
    answers = await labc.network.callAll("core.keys");
  } finally {
    await labc.close();
  }
  const rows = answers
    .map((a) => {
      if (a.error) return [a.host, "?", "", a.error.message];
      const keys = a.value as HostKeys;
      return [keys.host, keys.keyId, keys.nextKeyId ?? "", keys.until ? `both count until ${when(keys.until)}` : ""];
    })
    .sort((a, b) => a[0]!.localeCompare(b[0]!));
  const here = key.nextId ? `; rotating to ${key.nextId} until ${when(key.rotationEnds!)}` : "";
  return `labc: this host uses key id ${key.id}${here}\n${table(["HOST", "KEY ID", "NEXT KEY ID", ""], rows)}\n`;
}
