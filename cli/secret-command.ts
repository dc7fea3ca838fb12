import { existsSync } from "node:fs";
import { configDir, loadConfig, type ConfigKey } from "../lib/config.js";
import { thisComputer } from "../lib/router/http-endpoint.js";
import { networkKey } from "../lib/trust/network-key.js";
import { isSecret, newSecret, parseSecret, secretFile, writeSecretFile } from "../lib/trust/secret.js";
import type { SecretInput } from "./secret-input.js";

/** What a change of secret asks of the processes running already. */
const RESTART =
  "Processes running on this host keep what they started with: restart them, and the router " +
  "(`ps -C node -o pid,args` shows it as `labc router`; it also leaves 60 s after its last process).";

/** How the other hosts get the secret: never as an argument (every user reads those in `ps`). */
const CARRY =
  "To add a host: `labc invite` here prints a short one-time code, and `labc join <code>` there takes the secret. " +
  "Or on every other host of this network: `labc secret show | ssh <host> labc secret set` from here, " +
  "or `labc secret set` there and paste what `labc secret show` prints (or LABC_SECRET in its environment).";

const ACTIONS = ["new", "show", "set", "http-token", "rotate", "status"];

/** Why an argument is refused, and what to do instead; never repeats the argument. */
function argumentRefused(action: string, given: string): string {
  if (action !== "set") return `labc secret ${action} takes no argument`;
  const leaked = isSecret(given) || given.trim().startsWith("labc1_")
    ? " The secret given was not stored, and is now in your shell's history: if other users of this computer may have seen it, make a new one (`labc secret new --force`) and carry that."
    : "";
  return (
    "labc secret set takes no argument: every user of this computer sees a command's arguments (`ps`). " +
    "Run `labc secret set` and paste the secret at its prompt, or pipe it in: `labc secret show | ssh <this host> labc secret set`, " +
    `\`labc secret set < file\`, \`labc secret set --from-file file\`.${leaked}`
  );
}

/**
 * `labc secret new | show | set | http-token`: the network secret, in the config folder,
 * readable by its owner only. Every host of a network holds the same one; `set` reads it through
 * `read` (stdin, a prompt or a file: cli/secret-input.ts), never from an argument. Its HTTP token
 * opens the routers' HTTP endpoints, to this computer's users who can read the secret and to
 * other computers (lib/router/http-endpoint.ts).
 */
export async function runSecret(
  action: string,
  argument: string | undefined,
  options: { force?: boolean; window?: string; flags: Partial<Record<ConfigKey, unknown>>; read: () => Promise<SecretInput> },
): Promise<string> {
  if (!ACTIONS.includes(action)) {
    // `labc secret labc1_...` (set forgotten) is a secret given as an argument too.
    if (action.trim().startsWith("labc1_")) throw new SecretUsageError(argumentRefused("set", action));
    throw new SecretUsageError(`labc secret takes ${ACTIONS.join(", ")}, not ${/^[\w-]{1,20}$/.test(action) ? `"${action}"` : "that (not repeated here)"}`);
  }
  if (argument !== undefined) throw new SecretUsageError(argumentRefused(action, argument));
  const file = secretFile(configDir());
  switch (action) {
    case "new":
    case "set": {
      if (existsSync(file) && !options.force) {
        throw new SecretUsageError(`${file} holds a secret already; \`labc secret ${action} --force\` replaces it (every host must then get the new one)`);
      }
      let secret: string;
      if (action === "set") {
        const input = await options.read();
        parseSecret(input.text, input.origin);
        secret = input.text.trim();
      } else {
        secret = newSecret();
      }
      writeSecretFile(file, secret);
      const key = networkKey(secret);
      const next = action === "new" ? CARRY : "This host now talks only to hosts with the same secret.";
      return `labc: the network secret is in ${file} (key id ${key.id}).\n${next}\n${RESTART}\n`;
    }
    case "show": {
      const { values, sources } = loadConfig({ flags: options.flags });
      const secret = values["network.secret"];
      if (!secret) {
        throw new SecretUsageError(`no network secret is set: the network is open. \`labc secret new\` makes one`);
      }
      // The secret alone on stdout (for scripts); where it came from on stderr.
      process.stderr.write(`labc: network secret from ${sources["network.secret"]}, key id ${networkKey(secret).id}\n`);
      return `${secret}\n`;
    }
    case "rotate": {
      const { runRotate } = await import("./rotate-command.js");
      return runRotate({ window: options.window, flags: options.flags });
    }
    case "status": {
      const { runSecretStatus } = await import("./rotate-command.js");
      return runSecretStatus(options.flags);
    }
    case "http-token": {
      const { values } = loadConfig({ flags: options.flags });
      const secret = values["network.secret"];
      if (!secret) throw new SecretUsageError("no network secret is set: the network is open, and the HTTP endpoint answers this computer only");
      const { httpToken } = networkKey(secret);
      const beyond = thisComputer(values["http.address"]) ? ` once the router listens beyond loopback ([http] address = "0.0.0.0")` : "";
      // Paste the address into the browser: on a command line, every user of this computer reads it in `ps`.
      process.stderr.write(
        `labc: the status page on this computer is http://127.0.0.1:${values["http.port"]}/#token=${httpToken};` +
          ` from another computer, http://${values["host.name"]}:${values["http.port"]}/#token=${httpToken}${beyond};` +
          ` other clients (curl, Prometheus) send the token as "Authorization: Bearer <token>"\n`,
      );
      return `${httpToken}\n`;
    }
    default:
      throw new Error(`labc secret ${action}: not handled`);
  }
}

export class SecretUsageError extends Error {}
