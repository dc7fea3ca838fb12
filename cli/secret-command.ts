import { existsSync } from "node:fs";
import { configDir, loadConfig, type ConfigKey } from "../lib/config.js";
import { networkKey } from "../lib/trust/network-key.js";
import { newSecret, parseSecret, secretFile, writeSecretFile } from "../lib/trust/secret.js";

/** What a change of secret asks of the processes running already. */
const RESTART =
  "Processes running on this host keep what they started with: restart them, and the router " +
  "(`ps -C node -o pid,args` shows it as `labc router`; it also leaves 60 s after its last process).";

/**
 * `labc secret new | show | set <secret>`: the network secret, in the config folder, readable
 * by its owner only. Every host of a network holds the same one.
 */
export function runSecret(
  action: string,
  value: string | undefined,
  options: { force?: boolean; flags: Partial<Record<ConfigKey, unknown>> },
): string {
  const { values, sources } = loadConfig({ flags: options.flags });
  const file = secretFile(configDir());
  switch (action) {
    case "new":
    case "set": {
      if (existsSync(file) && !options.force) {
        throw new SecretUsageError(`${file} holds a secret already; \`labc secret ${action} --force\` replaces it (every host must then get the new one)`);
      }
      const secret = action === "new" ? newSecret() : (value ?? "");
      if (action === "set") {
        if (!value) throw new SecretUsageError("labc secret set takes the secret that `labc secret show` printed on another host");
        parseSecret(value, "the secret given");
      }
      writeSecretFile(file, secret.trim());
      const key = networkKey(secret.trim());
      const next =
        action === "new"
          ? `On every other host of this network: \`labc secret set ${secret}\` (or LABC_SECRET=${secret}).`
          : "This host now talks only to hosts with the same secret.";
      return `labc: the network secret is in ${file} (key id ${key.id}).\n${next}\n${RESTART}\n`;
    }
    case "show": {
      const secret = values["network.secret"];
      if (!secret) {
        throw new SecretUsageError(`no network secret is set: the network is open. \`labc secret new\` makes one`);
      }
      // The secret alone on stdout (for scripts); where it came from on stderr.
      process.stderr.write(`labc: network secret from ${sources["network.secret"]}, key id ${networkKey(secret).id}\n`);
      return `${secret}\n`;
    }
    default:
      throw new SecretUsageError(`labc secret takes new, show or set, not "${action}"`);
  }
}

export class SecretUsageError extends Error {}
