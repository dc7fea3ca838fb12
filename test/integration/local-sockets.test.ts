import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { NotTrustedError } from "../../lib/errors.js";
import { connectTcp } from "../../lib/net/connect-tcp.js";
import { freePort } from "../../lib/net/free-port.js";
import { listenTcp } from "../../lib/net/listen-tcp.js";
import { localSocketsIn, type LocalSockets } from "../../lib/net/local-sockets.js";
import type { TcpTransport } from "../../lib/net/tcp-transport.js";
import { LOCAL_MAGIC, localProof, socketBinding } from "../../lib/trust/local-proof.js";
import { networkKey, type NetworkKey } from "../../lib/trust/network-key.js";
import { LOCAL_SOCKET } from "../../lib/trust/own-address.js";
import { encodeMessage } from "../../lib/wire/codec.js";
import { Kind } from "../../lib/wire/message.js";
import { TestHost } from "../helpers.js";

/**
 * Issue 31: a host's own links on Unix sockets (lib/net/local-sockets.ts). Real listeners and
 * dialers in this process, real sockets; a stranger played with its own socket and bytes, and as
 * another user with setpriv; real labc processes for the whole path.
 */

const SECRET = `labc1_${Buffer.alloc(32, 9).toString("base64url")}`;
const asRoot = process.getuid?.() === 0 && existsSync("/usr/bin/setpriv");

let dir: string;
let local: LocalSockets;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "labc-sockets-"));
  local = localSocketsIn(join(dir, "labc"))!;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A listener whose accepted transports keep what they receive. */
async function receiver(host: string, { port = 0, key, sockets = local }: { port?: number; key?: NetworkKey; sockets?: LocalSockets | null } = {}) {
  const accepted: { transport: TcpTransport; bytes: Buffer[] }[] = [];
  const listener = await listenTcp(host, port, (transport) => {
    const entry = { transport, bytes: [] as Buffer[] };
    accepted.push(entry);
    transport.start((chunk) => entry.bytes.push(Buffer.from(chunk)), () => {});
  }, { key, local: sockets ?? undefined });
  const got = (text: string) => accepted.some((entry) => Buffer.concat(entry.bytes).toString() === text);
  return { listener, accepted, got };
}

const until = async (done: () => boolean, ms = 5000) => {
  for (const deadline = Date.now() + ms; !done(); await new Promise((resolve) => setTimeout(resolve, 5))) {
    if (Date.now() > deadline) throw new Error("timed out");
  }
};

/** What a raw socket at `path` receives until it closes (or `ms` pass). */
function exchange(path: string, write: (socket: net.Socket, read: () => Buffer) => void, ms = 3000): Promise<{ received: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ path });
    const read = () => Buffer.concat(chunks);
    const timer = setTimeout(() => (socket.destroy(), resolve({ received: read(), closed: false })), ms);
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", () => {});
    socket.on("close", () => (clearTimeout(timer), resolve({ received: read(), closed: true })));
    socket.on("connect", () => write(socket, read));
  });
}

describe("the folder", () => {
  test("is made for this user alone", () => {
    const made = lstatSync(local.dir);
    expect(made.isDirectory()).toBe(true);
    expect(made.mode & 0o777).toBe(0o700);
    expect(made.uid).toBe(process.getuid!());
  });

  test("is not used when a link stands in its place", () => {
    const linked = join(dir, "linked");
    mkdirSync(join(dir, "elsewhere"));
    mkdirSync(linked);
    symlinkSync(join(dir, "elsewhere"), join(linked, "sockets"));
    expect(localSocketsIn(linked)).toBeUndefined();
  });

  test("a folder put in its place once it was opened (by whoever may write its parent) is not followed", async () => {
    const parent = join(dir, "swapped");
    const sockets = localSocketsIn(parent)!;
    const ours = await receiver("127.0.0.1", { sockets });
    // The folder renamed away; another in its place (another user's, when this runs as root),
    // with a socket at the name.
    renameSync(join(parent, "sockets"), join(parent, "moved"));
    mkdirSync(join(parent, "sockets"));
    let planted = 0;
    const impostor = net.createServer((socket) => (planted++, socket.destroy()));
    await new Promise<void>((up) => impostor.listen(join(parent, "sockets", sockets.nameFor(ours.listener.port)), up));
    if (asRoot) chownSync(join(parent, "sockets"), 65534, 65534);
    const dialed = await connectTcp("127.0.0.1", ours.listener.port, 1000, undefined, sockets);
    expect(dialed.remote).toBe(LOCAL_SOCKET);
    dialed.write(Buffer.from("to ours"));
    await until(() => ours.got("to ours"));
    expect(planted).toBe(0);
    expect(readdirSync(join(parent, "moved"))).toEqual([sockets.nameFor(ours.listener.port)]);
    dialed.close();
    await ours.listener.close();
    impostor.close();
  });

  test.skipIf(!asRoot)("what another user put in while it was open to others is passed over once it is closed", async () => {
    // The folder 0777 (a mistake of the past), and another user's socket at a port's name.
    const once = join(dir, "once-open");
    mkdirSync(join(once, "sockets"), { recursive: true });
    chmodSync(join(once, "sockets"), 0o777);
    const port = await freePort();
    let planted = 0;
    const impostor = net.createServer((socket) => (planted++, socket.destroy()));
    const name = join(once, "sockets", local.nameFor(port));
    await new Promise<void>((up) => impostor.listen(name, up));
    chownSync(name, 65534, 65534);
    const sockets = localSocketsIn(once)!;
    expect(lstatSync(sockets.dir).mode & 0o777).toBe(0o700);
    // The port's holder makes no socket (another user's labc, a Python server, an older labc).
    const holder = await receiver("127.0.0.1", { port, sockets: null });
    const dialed = await connectTcp("127.0.0.1", port, 1000, undefined, sockets);
    expect(dialed.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    dialed.start(() => {}, () => {});
    dialed.write(Buffer.from("to the holder"));
    await until(() => holder.got("to the holder"));
    expect(planted).toBe(0);
    dialed.close();
    await holder.listener.close();
    impostor.close();
  });

  test.skipIf(!asRoot)("is not used when another user owns it", () => {
    const theirs = join(dir, "theirs");
    mkdirSync(join(theirs, "sockets"), { recursive: true });
    chownSync(join(theirs, "sockets"), 65534, 65534);
    expect(localSocketsIn(theirs)).toBeUndefined();
  });
});

describe("links over the socket", () => {
  test("a listener on 127.0.0.1 takes its port's socket too; a dialer of 127.0.0.1 takes it; bytes pass both ways; closing removes it", async () => {
    const { listener, accepted } = await receiver("127.0.0.1");
    const path = local.pathFor(listener.port);
    expect(lstatSync(path).isSocket()).toBe(true);
    const dialed = await connectTcp("127.0.0.1", listener.port, 1000, undefined, local);
    expect(dialed.remote).toBe(LOCAL_SOCKET);
    const back: Buffer[] = [];
    dialed.start((chunk) => back.push(Buffer.from(chunk)), () => {});
    dialed.write(Buffer.from("to the listener"));
    await until(() => accepted.length === 1 && Buffer.concat(accepted[0]!.bytes).toString() === "to the listener");
    expect(accepted[0]!.transport.remote).toBe(LOCAL_SOCKET);
    accepted[0]!.transport.write(Buffer.from("and back"));
    await until(() => Buffer.concat(back).toString() === "and back");
    dialed.close();
    await listener.close();
    // Neither the name nor the file it was made under.
    expect(readdirSync(local.dir).filter((name) => name === local.nameFor(listener.port) || name.startsWith(`${local.nameFor(listener.port)}.`))).toEqual([]);
  });

  test("a dialer of another address, or without the sockets, takes TCP; a listener on another address has no socket", async () => {
    const { listener, accepted } = await receiver("127.0.0.1");
    const tcp = await connectTcp("127.0.0.1", listener.port, 1000);
    tcp.start(() => {}, () => {});
    expect(tcp.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    await until(() => accepted.length === 1);
    expect(accepted[0]!.transport.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    tcp.close();
    await listener.close();
    // 127.0.0.2 is this host's too, but another process may hold 127.0.0.1 with the same port.
    const other = await receiver("127.0.0.2");
    expect(existsSync(local.pathFor(other.listener.port))).toBe(false);
    const toOther = await connectTcp("127.0.0.2", other.listener.port, 1000, undefined, local);
    expect(toOther.remote).toMatch(/^127\.0\.0\.2:\d+$/);
    toOther.close();
    await other.listener.close();
  });

  test("a socket left by a killed process is replaced, and one a process keeps without the port goes to the port's holder", async () => {
    // Left: a process that listened on the name and was killed (it could not remove it).
    const port = await freePort();
    // As another process names it (pathFor is this process's way to the folder: its descriptor).
    const path = local.shownFor(port);
    const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`], { stdio: ["ignore", "pipe", "inherit"] });
    const gone = new Promise((done) => child.once("exit", done));
    try {
      await new Promise((up) => child.stdout!.once("data", up));
    } finally {
      child.kill("SIGKILL");
      await gone;
    }
    expect(lstatSync(path).isSocket()).toBe(true);
    // A dialer finds nobody there, and takes TCP: to a holder of the port that makes no socket.
    const tcpOnly = await receiver("127.0.0.1", { port, sockets: null });
    const toTcp = await connectTcp("127.0.0.1", port, 1000, undefined, local);
    expect(toTcp.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    toTcp.start(() => {}, () => {});
    await until(() => tcpOnly.accepted.length === 1);
    toTcp.close();
    await tcpOnly.listener.close();
    const first = await receiver("127.0.0.1", { port });
    const dialed = await connectTcp("127.0.0.1", port, 1000, undefined, local);
    expect(dialed.remote).toBe(LOCAL_SOCKET);
    await until(() => first.accepted.length === 1);
    dialed.close();
    await first.listener.close();

    // Kept: a process of this user that answers on the name without holding the port.
    const squatter = net.createServer();
    let squatted = 0;
    squatter.on("connection", (socket) => (squatted++, socket.destroy()));
    await new Promise<void>((up) => squatter.listen(path, up));
    const second = await receiver("127.0.0.1", { port });
    const again = await connectTcp("127.0.0.1", port, 1000, undefined, local);
    expect(again.remote).toBe(LOCAL_SOCKET);
    await until(() => second.accepted.length === 1);
    expect(squatted).toBe(0);
    again.close();
    await second.listener.close();
    squatter.close();
  });
});

const noPython = spawnSync("python3", ["--version"]).status === 0 ? undefined : "python3 is not installed (.ci/run installs it)";

test.skipIf(noPython)("a socket whose backlog is full sends its dialers to TCP, as TCP would have waited", async () => {
  // A process of this user that holds the name and accepts nothing, its backlog of 1 full.
  const port = await freePort();
  const holder = await receiver("127.0.0.1", { port, sockets: null });
  const child = spawn("python3", ["-c", `import socket, time\ns = socket.socket(socket.AF_UNIX)\ns.bind(${JSON.stringify(local.shownFor(port))})\ns.listen(1)\nprint("up", flush=True)\ntime.sleep(30)`], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await new Promise((up) => child.stdout!.once("data", up));
    const dialed = await Promise.all(Array.from({ length: 6 }, () => connectTcp("127.0.0.1", port, 1000, undefined, local)));
    for (const transport of dialed) transport.start(() => {}, () => {});
    const remotes = dialed.map((transport) => transport.remote);
    expect(remotes).toContain(LOCAL_SOCKET);
    expect(remotes.filter((remote) => remote !== LOCAL_SOCKET).length).toBeGreaterThan(0);
    await until(() => holder.accepted.length === remotes.filter((remote) => remote !== LOCAL_SOCKET).length);
    for (const transport of dialed) transport.close();
  } finally {
    child.kill("SIGKILL");
    await holder.listener.close();
  }
});

describe("with a secret", () => {
  const key = networkKey(SECRET);

  test("the link proves it over the socket; a dialer with another secret is refused, not sent to TCP", async () => {
    const { listener, accepted } = await receiver("0.0.0.0", { key });
    const dialed = await connectTcp("127.0.0.1", listener.port, 2000, networkKey(SECRET), local);
    dialed.start(() => {}, () => {});
    expect(dialed.remote).toBe(LOCAL_SOCKET);
    dialed.write(Buffer.from("after the proof"));
    await until(() => accepted.length === 1 && Buffer.concat(accepted[0]!.bytes).toString() === "after the proof");
    expect(accepted[0]!.transport.remote).toBe(LOCAL_SOCKET);
    dialed.close();
    const other = networkKey(`labc1_${Buffer.alloc(32, 3).toString("base64url")}`);
    // Refused on the socket (its error names it), not tried again over TCP.
    const refusal = await connectTcp("127.0.0.1", listener.port, 2000, other, local).catch((error) => error);
    expect(refusal).toBeInstanceOf(NotTrustedError);
    expect(refusal.message).toContain(`(local socket ${local.shownFor(listener.port)})`);
    expect(accepted).toHaveLength(1);
    await listener.close();
  });

  test("a stranger on the socket: frames in the clear, a wrong key id, and a proof bound to a TCP tuple are all refused", async () => {
    const { listener, accepted } = await receiver("0.0.0.0", { key });
    const path = local.pathFor(listener.port);
    // A hello in the clear: told why, and closed.
    const hello = Buffer.concat([encodeMessage(Kind.hello, 1, { v: 1, role: "client", id: "stranger", host: "x", hostId: "x" })].flat());
    const plain = await exchange(path, (socket) => socket.write(hello));
    expect(plain.closed).toBe(true);
    expect(plain.received.toString("latin1")).toContain(`127.0.0.1:${listener.port}: this host requires the network secret`);
    expect(plain.received.toString("latin1")).toContain("LABC_NOT_TRUSTED");
    // A key id the listener does not hold: "LCLX", and closed.
    const wrongId = await exchange(path, (socket) => socket.write(Buffer.concat([LOCAL_MAGIC, randomBytes(8), randomBytes(32)])));
    expect(wrongId.received.toString("latin1")).toBe("LCLX");
    expect(wrongId.closed).toBe(true);
    // A relay's proof: made for a TCP connection (what the real owner of the secret would
    // prove on the link the relay opened to it), not for this socket.
    const clientNonce = randomBytes(32);
    const localKey = key.localKeyFor(key.id)!;
    let serverProvedName = false;
    const relayed = await exchange(path, (socket, read) => {
      socket.write(Buffer.concat([LOCAL_MAGIC, Buffer.from(key.id, "hex"), clientNonce]));
      const answer = () => {
        if (read().length < 68) return void setTimeout(answer, 5);
        const serverNonce = read().subarray(4, 36);
        // The listener's own proof is for the socket's name, which a stranger cannot forge...
        serverProvedName = read().subarray(36, 68).equals(localProof(localKey, "server", clientNonce, serverNonce, socketBinding(local.nameFor(listener.port))));
        // ...and the client's must be too.
        socket.write(Buffer.concat([localProof(localKey, "client", clientNonce, serverNonce, `127.0.0.1 40312 127.0.0.1 ${listener.port}`), hello]));
      };
      answer();
    });
    expect(relayed.closed).toBe(true);
    expect(relayed.received).toHaveLength(68);
    expect(serverProvedName).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(accepted).toHaveLength(0);
    await listener.close();
  });

  test("network.local_proof = false keeps TLS on loopback: no socket, and dialers take TCP", async () => {
    const tlsOnly = networkKey(SECRET);
    tlsOnly.localProof = false;
    const { listener, accepted } = await receiver("0.0.0.0", { key: tlsOnly });
    expect(existsSync(local.pathFor(listener.port))).toBe(false);
    const dialed = await connectTcp("127.0.0.1", listener.port, 2000, tlsOnly, local);
    dialed.start(() => {}, () => {});
    expect(dialed.remote).not.toBe(LOCAL_SOCKET);
    await until(() => accepted.length === 1);
    dialed.close();
    await listener.close();
  });
});

test.skipIf(!asRoot)("another user of this computer cannot open the sockets: the folder keeps them out", async () => {
  const { listener } = await receiver("127.0.0.1");
  // Every folder above the sockets' open to others, and the socket too (as a umask of 0 makes
  // it), so that only the folder's own mode stands in the way.
  chmodSync(dir, 0o755);
  chmodSync(join(dir, "labc"), 0o755);
  chmodSync(local.shownFor(listener.port), 0o777);
  const as = (target: string) => {
    const script = `const s = require("net").connect(${target}); s.on("connect", () => (console.log("connected"), s.destroy())); s.on("error", (e) => console.log(e.code));`;
    return spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", script], { cwd: "/", encoding: "utf8", timeout: 10_000 }).stdout.trim();
  };
  // The control: the port itself is open to every user of this computer.
  expect(as(`${listener.port}, "127.0.0.1"`)).toBe("connected");
  expect(as(JSON.stringify(local.shownFor(listener.port)))).toBe("EACCES");
  await listener.close();
});

/**
 * Whether the process `pid` holds one end of a connection accepted on the socket named `name`,
 * by ss: an accepted end shows the name its listener was made under (name.pid), and the other
 * end's inode, which the dialing process holds.
 */
function lifelineOnSocket(name: string, pid: number): boolean {
  const lines = spawnSync("ss", ["-xpn"], { encoding: "utf8" }).stdout.split("\n").map((line) => line.trim().split(/\s+/));
  const peers = new Set(lines.filter((f) => f[1] === "ESTAB" && f[4]?.includes(`/${name}.`)).map((f) => f[7]));
  return lines.some((f) => f[1] === "ESTAB" && peers.has(f[5]) && f.join(" ").includes(`pid=${pid},`));
}

describe("labc processes", () => {
  let host: TestHost;
  beforeAll(async () => {
    host = await TestHost.start();
  });
  afterAll(() => host.cleanup());

  test("with network.local_sockets = true, a server and its router take sockets for their ports, calls go over them, and they go when the processes leave", async () => {
    const on = { LABC_NETWORK_LOCAL_SOCKETS: "true" };
    const served = await host.serve([join(import.meta.dirname, "..", "..", "services", "echo.ts")], on);
    const sockets = localSocketsIn(join(host.dir, "labc"))!;
    expect(lstatSync(sockets.pathFor(served.port)).isSocket()).toBe(true);
    expect(lstatSync(sockets.pathFor(host.port)).isSocket()).toBe(true);
    const result = await host.cli(["call", "echo", "over the socket"], on);
    expect(result.stdout.trim()).toBe("over the socket");
    // The server's lifeline is on the router's socket (as ss shows it: the router accepted a
    // connection there whose other end is the server's), and the router's view of it says 127.0.0.1.
    expect(lifelineOnSocket(sockets.nameFor(host.port), served.pid)).toBe(true);
    const listed: { pid: number; address: string; port: number }[] = JSON.parse((await host.cli(["ls", "--json"], on)).stdout);
    expect(listed.find((server) => server.pid === served.pid)).toMatchObject({ address: "127.0.0.1", port: served.port });
    served.child.kill("SIGTERM");
    await served.exited;
    await until(() => !existsSync(sockets.pathFor(served.port)) && !existsSync(sockets.pathFor(host.port)), 10_000);
  });

  test("by default every link is TCP: no socket is made", async () => {
    // Empty is unset for labc, whatever the environment the tests run in says.
    const unset = { LABC_NETWORK_LOCAL_SOCKETS: "" };
    const served = await host.serve([join(import.meta.dirname, "..", "..", "services", "echo.ts")], unset);
    const result = await host.cli(["call", "echo", "over TCP"], unset);
    expect(result.stdout.trim()).toBe("over TCP");
    const folder = join(host.dir, "labc", "sockets");
    const sockets = localSocketsIn(join(host.dir, "labc"))!;
    const named = readdirSync(folder).filter((name) => [served.port, host.port].some((port) => name === sockets.nameFor(port) || name.startsWith(`${sockets.nameFor(port)}.`)));
    expect(named).toEqual([]);
    served.child.kill("SIGTERM");
    await served.exited;
  });
});
