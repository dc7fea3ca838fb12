import net from "node:net";
import { loadConfig, stateDir, type ConfigKey } from "../lib/config.js";
import { NoInviteError } from "../lib/errors.js";
import { hostId } from "../lib/identity.js";
import { InviteChannel } from "../lib/invite/invite-channel.js";
import { inviteFilePath, readInviteFile, removeInviteFile, writeInviteFile } from "../lib/invite/invite-file.js";
import { DEFAULT_INVITE_MS, InviteServer, invitePortOf, type InviteEnd } from "../lib/invite/invite-server.js";
import { networkKey } from "../lib/trust/network-key.js";
import { UsageError } from "./args.js";

/** `--valid 10m`, `90s`, `1h`: how long the invite stays open (at most a day). */
export function validityOf(text: string | undefined): number {
  if (text === undefined) return DEFAULT_INVITE_MS;
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(text.trim());
  const ms = match ? Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "m") as "s" | "m" | "h"] : NaN;
  if (!(ms >= 1000 && ms <= 86_400_000)) throw new UsageError(`--valid takes a duration from 1s to 24h (90s, 10m, 1h), not ${JSON.stringify(text).slice(0, 40)}`);
  return ms;
}

const clock = (ms: number) => new Date(ms).toTimeString().slice(0, 5);

/** What the inviting host says once its invite ended, and the exit code. */
export function endText(end: InviteEnd, nameplate: string): { text: string; code: number } {
  switch (end.kind) {
    case "joined":
      return { text: `labc: ${end.peer.name} (${end.address}) joined the network: it holds the secret now`, code: 0 };
    case "not-stored":
      return { text: `labc: ${end.peer.name} (${end.address}) received the secret but did not store it: ${end.reason}`, code: 1 };
    case "wrong-code":
      return { text: `labc: a host at ${end.address} tried invite ${nameplate} with a wrong code: the invite is spent (one try per code); \`labc invite\` makes a new one`, code: 1 };
    case "broken":
      return { text: `labc: the exchange with ${end.address} broke off (${end.reason}): the invite is spent; \`labc invite\` makes a new one`, code: 1 };
    case "expired":
      return { text: `labc: invite ${nameplate} expired unused`, code: 1 };
    case "revoked":
      return { text: `labc: invite ${nameplate} revoked (${end.by}); nobody joined`, code: 1 };
  }
}

/**
 * `labc invite`: opens an invite (lib/invite/invite-server.ts), prints its code and waits for the
 * new host's `labc join`, for `--valid` (10 minutes), one use; Ctrl-C or `labc invite --revoke`
 * ends it. Resolves with the exit code.
 */
export async function runInvite(options: { valid?: string; flags: Partial<Record<ConfigKey, unknown>> }): Promise<number> {
  const { values } = loadConfig({ flags: options.flags });
  const secret = values["network.secret"];
  if (!secret) {
    throw new UsageError("this host has no network secret, so there is nothing to hand over: the network is open. `labc secret new` makes one (then restart this host's labc processes), and `labc invite` brings each other host in");
  }
  const validMs = validityOf(options.valid);
  const port = invitePortOf(values["router.port"]);
  const self = { name: values["host.name"], hostId: values["host.id"] || hostId(values["host.name"]) };
  let invite: InviteServer;
  try {
    invite = await InviteServer.open({ port, validMs, secret, self, answerAsks: values["discovery.enabled"] });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    const open = readInviteFile(inviteFilePath(stateDir(), port));
    throw new UsageError(
      `port ${port} (the invite port beside root port ${values["router.port"]}) is taken${open ? `: invite ${open.nameplate} is open on this host until ${clock(open.expiresAt)}` : ""}; \`labc invite --revoke\` ends an open invite`,
    );
  }
  const file = inviteFilePath(stateDir(), port);
  writeInviteFile(file, { pid: process.pid, nameplate: invite.code.nameplate, port, expiresAt: invite.expiresAt, revokeToken: invite.revokeToken });
  const interrupt = () => invite.revoke("interrupted");
  process.once("SIGINT", interrupt);
  process.once("SIGTERM", interrupt);
  process.stderr.write(
    `labc: invite ${invite.code.nameplate} is open until ${clock(invite.expiresAt)} for one host, into the network of key id ${networkKey(secret).id}. On the new host, run:\n`,
  );
  process.stdout.write(`\n    labc join ${invite.code.text}\n\n`);
  process.stderr.write(
    `labc: waiting (port ${port}${values["discovery.enabled"] ? ", found on the LAN by its number" : `; discovery is off: there, add --host <this host's address>`}); Ctrl-C or \`labc invite --revoke\` ends the invite\n`,
  );
  const end = await invite.ended;
  process.removeListener("SIGINT", interrupt);
  process.removeListener("SIGTERM", interrupt);
  removeInviteFile(file, invite.revokeToken);
  const { text, code } = endText(end, invite.code.nameplate);
  process.stderr.write(`${text}\n`);
  return end.kind === "revoked" && end.by === "interrupted" ? 130 : code;
}

/** `labc invite --revoke`: ends this host's open invite, through its port, with its token. */
export async function revokeInvite(flags: Partial<Record<ConfigKey, unknown>>): Promise<string> {
  const { values } = loadConfig({ flags });
  const port = invitePortOf(values["router.port"]);
  const file = inviteFilePath(stateDir(), port);
  const open = readInviteFile(file);
  if (!open) throw new NoInviteError(`no invite is open on this host (nothing in ${file})`);
  const socket = net.connect({ host: "127.0.0.1", port });
  const channel = new InviteChannel(socket, 5000);
  try {
    await channel.receive();
    channel.send({ revoke: open.revokeToken });
    const answer = await channel.receive();
    if (answer.revoked !== true) throw new NoInviteError(`the invite on port ${port} did not take the revocation: ${String(answer.message ?? "no reason").slice(0, 200)}`);
  } catch (error) {
    if (error instanceof NoInviteError) throw error;
    throw new NoInviteError(`invite ${open.nameplate} (port ${port}) did not answer (${(error as Error).message}): it has ended already`);
  } finally {
    socket.destroy();
  }
  return `labc: invite ${open.nameplate} revoked\n`;
}
