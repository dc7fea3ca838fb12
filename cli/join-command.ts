import net from "node:net";
import { createInterface } from "node:readline";
import { configDir, loadConfig, type Config, type ConfigKey } from "../lib/config.js";
import { configure } from "../lib/index.js";
import { hostStatus } from "./host-status.js";
import { NoInviteError, NotTrustedError, WrongCodeError } from "../lib/errors.js";
import { hostId } from "../lib/identity.js";
import { parsePeer } from "../lib/discovery/static-peers.js";
import { InviteChannel, ChannelClosed } from "../lib/invite/invite-channel.js";
import { parseInviteCode } from "../lib/invite/invite-code.js";
import { receiveSecret } from "../lib/invite/invite-exchange.js";
import { findInvite } from "../lib/invite/invite-finder.js";
import { invitePortOf } from "../lib/invite/invite-server.js";
import { networkKey } from "../lib/trust/network-key.js";
import { isSecret, secretFile, writeSecretFile } from "../lib/trust/secret.js";
import { UsageError } from "./args.js";

/** What joining asks of the processes running already. */
const RESTART =
  "Processes running on this host keep what they started with: restart them, and the router " +
  "(`labc status` shows its pid; it also leaves 60 s after its last process). The next labc command starts it with the secret.";

/**
 * Which labc processes run on this host without the secret, and how to restart them; undefined
 * when no router runs (the next labc command starts one, with the secret).
 */
async function runningHere(values: Config, flags: Partial<Record<ConfigKey, unknown>>): Promise<string | undefined> {
  try {
    const status = await hostStatus(values, () => configure(flags));
    if (!status.running || !status.router) return "No labc process runs on this host yet: the next one starts with the secret.";
    const unit = status.router.unit ? ` (under ${status.router.unit}: restart it with systemctl)` : "";
    return (
      `This host's router (pid ${status.router.pid})${unit} and the labc processes linked to it (\`labc status\` lists them) run without the secret, and keep running so: ` +
      `stop the servers (Ctrl-C, \`labc stop-service\`), then the router (\`kill ${status.router.pid}\`), and start them again; the first labc command starts the router with the secret.`
    );
  } catch {
    return undefined;
  }
}

/** The code from stdin: a line typed at a prompt, or piped. */
export async function readCode(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("labc: the code `labc invite` printed on the inviting host (like 7-tiger-wheat): ");
  const reader = createInterface({ input: process.stdin, terminal: false });
  try {
    for await (const line of reader) if (line.trim() !== "") return line;
  } finally {
    reader.close();
  }
  throw new UsageError("labc join read no code: give it (`labc join 7-tiger-wheat`) or type it at the prompt");
}

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, timeout: 10_000 });
    socket.once("connect", () => {
      socket.setTimeout(0);
      resolve(socket);
    });
    socket.once("timeout", () => {
      socket.destroy();
      reject(new NoInviteError(`${host}:${port} did not answer within 10 s: is it the inviting host, and is port ${port} open there?`));
    });
    socket.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new NoInviteError(
          error.code === "ECONNREFUSED"
            ? `${host}:${port}: no invite is open there (it expired, was revoked or used, or \`labc invite\` runs on another host)`
            : `${host}:${port}: ${error.code ?? error.message}`,
        ),
      ),
    );
  });
}

/**
 * `labc join <code>`: finds the inviting host (the LAN, or `--host`), runs the invite's exchange
 * (lib/invite/invite-exchange.ts), stores the network secret it receives as `labc secret set`
 * does (mode 0600), and says what to restart. A secret held already is replaced only with
 * `--force`; one from the environment or a config file is never overridden from here.
 */
export async function runJoin(typed: string, options: { host?: string; force?: boolean; flags: Partial<Record<ConfigKey, unknown>> }): Promise<string> {
  const code = parseInviteCode(typed);
  if (typeof code === "string") throw new UsageError(`labc join: ${code}`);
  const { values, sources } = loadConfig({ flags: options.flags });
  const file = secretFile(configDir());
  const held = values["network.secret"];
  // Checked before anything is sent: a join that could not store the secret would spend the invite.
  if (held && sources["network.secret"] !== file) {
    throw new UsageError(`this host takes its network secret from ${sources["network.secret"]} (key id ${networkKey(held).id}), which a joined one would not override: remove it there first`);
  }
  if (held && !options.force) {
    throw new UsageError(`${file} holds a network secret already (key id ${networkKey(held).id}): \`labc join --force\` replaces it with the inviting network's`);
  }
  // What runs here already, asked while this host is still in the open network: it must restart.
  const running = await runningHere(values, options.flags);
  const invitePort = invitePortOf(values["router.port"]);
  let where: { host: string; port: number; name?: string };
  if (options.host !== undefined) {
    where = parsePeer(options.host, invitePort);
  } else if (!values["discovery.enabled"]) {
    throw new UsageError("discovery is off on this host (discovery.enabled = false): name the inviting host with --host <address>");
  } else {
    const found = await findInvite(code.nameplate, { port: invitePort, interfaces: values["discovery.interfaces"] });
    where = { host: found.address, port: found.port, name: found.name };
  }
  const address = `${where.host}:${where.port}`;
  const socket = await connect(where.host, where.port);
  const channel = new InviteChannel(socket, 30_000);
  const self = { name: values["host.name"], hostId: values["host.id"] || hostId(values["host.name"]) };
  let outcome;
  try {
    outcome = await receiveSecret(channel, code, self);
  } catch (error) {
    if (error instanceof ChannelClosed) throw new NotTrustedError(address, `the invite's exchange broke off: ${error.message}`);
    throw error;
  }
  switch (outcome.kind) {
    case "wrong-code":
      throw new WrongCodeError(
        address,
        `the code does not match the invite open there (a typo, or another host's code): that invite is now spent; ask for a new code (\`labc invite\` on the inviting host)`,
      );
    case "refused":
      if (outcome.code === "LABC_NO_INVITE") throw new NoInviteError(`${address}: ${outcome.message}`);
      throw new NotTrustedError(address, `the invite's exchange failed: ${outcome.message}`);
    case "received": {
      const secret = outcome.payload.secret.trim();
      if (!isSecret(secret)) {
        outcome.confirm("what came is not a labc network secret");
        throw new NotTrustedError(address, "the inviting host sent something that is not a labc network secret: nothing was stored");
      }
      try {
        writeSecretFile(file, secret);
      } catch (error) {
        outcome.confirm(`it could not write ${file}`);
        throw new Error(`the secret came, but ${file} could not be written: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      outcome.confirm(true);
      // Let the receipt leave before the process ends.
      await new Promise((done) => socket.once("close", done).setTimeout(2000, () => socket.destroy()));
      const from = `${outcome.inviter.name}${where.name && where.name !== outcome.inviter.name ? ` (${where.name})` : ""} at ${where.host}`;
      return `labc: joined the network of ${from}: the network secret is in ${file} (key id ${networkKey(secret).id}).\n${running ?? RESTART}\n`;
    }
  }
}
