import { existsSync } from "node:fs";
import { configDir, loadConfig, type ConfigKey } from "../lib/config.js";
import { isLoopback } from "../lib/http-endpoint.js";
import { networkKey } from "../lib/trust/network-key.js";
import { newSecret, parseSecret, secretFile, writeSecretFile } from "../lib/trust/secret.js";

/** What a change of secret asks of the processes running already. */
const RESTART =
  "Processes running on this host keep what they started with: restart them, and the router " +
  "(`ps -C node -o pid,args` shows it as `labc router`; it also leaves 60 s after its last process).";

/**
 * `labc secret new | show | set <secret> | http-token`: the network secret, in the config
 * folder, readable by its owner only. Every host of a network holds the same one. Its HTTP token
 * opens the routers' HTTP endpoints, to this computer's users who can read the secret and to
 * other computers (lib/http-endpoint.ts).
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
    case "http-token": {
      const secret = values["network.secret"];
      if (!secret) throw new SecretUsageError("no network secret is set: the network is open, and the HTTP endpoint answers this computer only");
      const { httpToken } = networkKey(secret);
      const beyond = isLoopback(values["http.address"]) ? ` once the router listens beyond loopback ([http] address = "0.0.0.0")` : "";
      // Paste the address into the browser: on a command line, every user of this computer reads it in `ps`.
      process.stderr.write(
        `labc: the status page on this computer is http://127.0.0.1:${values["http.port"]}/#token=${httpToken};` +
          ` from another computer, http://${values["host.name"]}:${values["http.port"]}/#token=${httpToken}${beyond};` +
          ` other clients (curl, Prometheus) send the token as "Authorization: Bearer <token>"\n`,
      );
      return `${httpToken}\n`;
    }
    default:
      throw new SecretUsageError(`labc secret takes new, show, set or http-token, not "${action}"`);
  }
}

export class SecretUsageError extends Error {}
