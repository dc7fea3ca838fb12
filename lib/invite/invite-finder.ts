import dgram from "node:dgram";
import { NoInviteError } from "../errors.js";
import { interfaceAddresses } from "../discovery/discovery.js";

/** Where an invite was found: the exchange's TCP address and port, and the inviting host's name. */
export interface FoundInvite {
  address: string;
  port: number;
  name: string;
}

/** How many times the LAN is asked, and how long each ask waits: at most 5 datagrams per interface. */
const ASKS = 5;
const ASK_WAIT_MS = 600;

/**
 * Asks the LAN "who has invite N?": a UDP datagram to the invite port at each interface's
 * broadcast address (those of `discovery.interfaces`, else every one but loopback), a few times,
 * until a host answers. Two hosts answering for the same number is refused (--host picks one):
 * the exchange spends an invite, and the wrong host's would be spent for nothing.
 */
export async function findInvite(nameplate: string, options: { port: number; interfaces: readonly string[] }): Promise<FoundInvite> {
  const targets = interfaceAddresses(options.interfaces);
  if (targets.length === 0) {
    throw new NoInviteError(`no network interface to ask for invite ${nameplate} on (discovery.interfaces): give the inviting host with --host`);
  }
  const socket = dgram.createSocket({ type: "udp4" });
  const found = new Map<string, FoundInvite>();
  socket.on("message", (data, remote) => {
    try {
      const answer = JSON.parse(data.toString("utf8")) as { labcInvite?: unknown; nameplate?: unknown; port?: unknown; name?: unknown };
      if (answer.labcInvite !== "here" || answer.nameplate !== nameplate) return;
      const port = Number(answer.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) return;
      const name = typeof answer.name === "string" ? answer.name.slice(0, 255) : remote.address;
      found.set(remote.address, { address: remote.address, port, name });
    } catch {
      // not an answer
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, () => {
        socket.removeListener("error", reject);
        socket.setBroadcast(true);
        resolve();
      });
    });
    socket.on("error", () => {});
    const ask = Buffer.from(JSON.stringify({ labcInvite: "ask", nameplate }));
    for (let round = 0; round < ASKS && found.size === 0; round++) {
      for (const { broadcast } of targets) socket.send(ask, options.port, broadcast);
      await new Promise((done) => setTimeout(done, ASK_WAIT_MS));
    }
  } finally {
    socket.close();
  }
  const answers = [...found.values()];
  if (answers.length === 0) {
    throw new NoInviteError(
      `no host on this LAN has invite ${nameplate} open (asked ${targets.map((t) => t.name).join(", ")} ${ASKS} times): ` +
        "it may have expired (10 minutes), been revoked or used, or the inviting host is beyond this LAN: give it with --host <address>",
    );
  }
  if (answers.length > 1) {
    throw new NoInviteError(
      `${answers.length} hosts have an invite ${nameplate} open (${answers.map((a) => `${a.name} at ${a.address}`).join(", ")}): give the one that invited you with --host <address>`,
    );
  }
  return answers[0]!;
}
