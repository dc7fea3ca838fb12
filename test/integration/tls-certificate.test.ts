/**
 * The network key is the only key (issue 27, item 1). A stranger without the secret runs a TLS
 * server with a certificate from a CA of its own that Node is told to trust (NODE_EXTRA_CA_CERTS,
 * as a system CA would be), and waits for a member's dial: a caller's or a server's to its router,
 * a router's to a static peer. It must never complete a handshake, nor read a byte a member
 * sends. And a member's router takes no handshake without the key: not a client certificate, not
 * another identity, not the right identity with another key, not a resumed session.
 */
import { execFile, execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, expect, test } from "vitest";
import { frameOf, helloBody } from "../../bench/hostile-peer.js";
import { networkKey } from "../../lib/trust/network-key.js";
import { Kind } from "../../lib/wire/message.js";
import { eventually, TestHost } from "../helpers.js";

const SECRET = `labc1_${randomBytes(32).toString("base64url")}`;
const KEY = networkKey(SECRET);
const TLS13 = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3" } as const;

let host: TestHost;
let pki: string;
let ca: string;
let stranger: CertificateServer;

/** The stranger's TLS server: a certificate that Node trusts, and a record of what it got. */
class CertificateServer {
  handshakes = 0;
  readonly received: Buffer[] = [];
  readonly failures: string[] = [];
  readonly server: tls.Server;

  constructor(key: Buffer, cert: Buffer) {
    this.server = tls.createServer({ key, cert, ...TLS13 }, (socket) => {
      this.handshakes += 1;
      socket.on("error", () => {});
      // What it reads is the member's first frame, a hello, in the clear for it.
      socket.on("data", (chunk: Buffer) => this.received.push(chunk));
    });
    this.server.on("tlsClientError", (error: NodeJS.ErrnoException) => this.failures.push(error.code ?? error.message));
  }

  listen(): Promise<number> {
    return new Promise((done) => this.server.listen(0, "127.0.0.1", () => done((this.server.address() as AddressInfo).port)));
  }

  /** What it read, as text: a labc hello names the host, its id and its role. */
  heard(): string {
    return Buffer.concat(this.received).toString("latin1");
  }
}

/** A CA and a certificate for 127.0.0.1 it signed, made with openssl in `dir`. */
function makeCertificates(dir: string): { ca: string; key: Buffer; cert: Buffer } {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=stranger CA");
  openssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  writeFileSync(join(dir, "san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf");
  return { ca: join(dir, "ca.pem"), key: readFileSync(join(dir, "server.key")), cert: readFileSync(join(dir, "server.pem")) };
}

/** A member's environment: the secret, and the stranger's CA trusted by Node. */
const member = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ LABC_SECRET: SECRET, NODE_EXTRA_CA_CERTS: ca, ...extra });

beforeAll(async () => {
  host = await TestHost.start();
  pki = mkdtempSync(join(tmpdir(), "labc-pki-"));
  const made = makeCertificates(pki);
  ca = made.ca;
  stranger = new CertificateServer(made.key, made.cert);
});
afterAll(async () => {
  stranger?.server.close();
  await host?.cleanup();
  if (pki) rmSync(pki, { recursive: true, force: true });
});

test("the stranger's certificate is one that Node trusts, so only labc's own checks stand in the way", async () => {
  // Without this, the tests below would prove nothing: Node would refuse the certificate anyway.
  const port = await stranger.listen();
  const script = `const s=require("node:tls").connect({host:"127.0.0.1",port:${port},minVersion:"TLSv1.3"},()=>{console.log(s.authorized);s.end()})`;
  // Not execFileSync: the stranger's server runs in this process and must answer meanwhile.
  const authorized = await new Promise<string>((done, fail) =>
    execFile(process.execPath, ["-e", script], { env: { ...process.env, NODE_EXTRA_CA_CERTS: ca }, timeout: 10_000 }, (error, out) => (error ? fail(error) : done(out))),
  );
  expect(authorized.trim()).toBe("true");
  await eventually(() => stranger.handshakes === 1, 5000, "the check's own handshake");
  stranger.handshakes = 0;
});

test("a caller whose router port the stranger holds is refused in the handshake; the stranger reads nothing", async () => {
  const port = (stranger.server.address() as AddressInfo).port;
  const failures = stranger.failures.length;
  const calling = host.cli(["call", "echo", '"the arguments of a call"'], member({ LABC_ROUTER_PORT: String(port) }));
  // Whichever comes first: the call's end, or the stranger reading what it sent (then the call
  // waits for an answer the stranger may forge at leisure).
  let ended = false;
  void calling.finally(() => (ended = true));
  await eventually(() => ended || stranger.heard() !== "", 20_000, "the call's end or the stranger reading it");
  expect(stranger.heard()).toBe("");
  const call = await calling;
  expect(stranger.handshakes).toBe(0);
  expect(call.code).toBe(1);
  expect(call.stderr).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}: .*\\[LABC_NOT_TRUSTED\\]`));
  // The handshake failed on the stranger's side too: it could not finish it.
  await eventually(() => stranger.failures.length > failures, 5000, "the stranger's failed handshake");
});

let router: ChildProcess;
let routerLog = "";

test("a router whose static peer is the stranger never links to it, and says so", async () => {
  const port = (stranger.server.address() as AddressInfo).port;
  const failures = stranger.failures.length;
  router = host.spawn(["router"], member({ LABC_DISCOVERY_PEERS: `127.0.0.1:${port}`, LABC_ROUTER_LINGER: "60" }));
  router.stderr!.on("data", (chunk) => (routerLog += chunk));
  // Static peers are dialed at start and every 2 s: two dials at least.
  await eventually(() => stranger.failures.length + stranger.handshakes >= failures + 2, 10_000, "two dials of the router to the stranger");
  expect(stranger.heard()).toBe("");
  expect(stranger.handshakes).toBe(0);
  await eventually(() => routerLog.includes(`refused 127.0.0.1: router link: 127.0.0.1:${port}: `), 5000, "the router's refusal in its log");
  expect(routerLog).toMatch(/LABC_NOT_TRUSTED|network secret|certificate/);
});

/** Dials the member's router from `from` (a loopback address of its own: each refusal is logged). */
function dial(from: string, options: tls.ConnectionOptions): Promise<{ secure: boolean; error?: string; socket: tls.TLSSocket }> {
  return new Promise((resolve) => {
    const raw = net.connect({ host: "127.0.0.1", port: host.port, localAddress: from });
    const socket = tls.connect({ socket: raw, ...TLS13, ...options });
    socket.once("secureConnect", () => resolve({ secure: true, socket }));
    socket.once("error", (error: NodeJS.ErrnoException) => resolve({ secure: false, error: error.code ?? error.message, socket }));
  });
}

test("the member's router takes no handshake without the key: a client certificate, another identity, another key", async () => {
  expect(router.exitCode).toBeNull();
  const certificate = await dial("127.0.0.2", { key: readFileSync(join(pki, "server.key")), cert: readFileSync(join(pki, "server.pem")), ca: readFileSync(ca) });
  expect(certificate.secure).toBe(false);
  const identity = await dial("127.0.0.3", { pskCallback: () => ({ psk: randomBytes(32), identity: "labc1 0123456789abcdef" }), checkServerIdentity: () => undefined });
  expect(identity.secure).toBe(false);
  const wrongKey = await dial("127.0.0.4", { pskCallback: () => ({ psk: randomBytes(32), identity: KEY.identity }), checkServerIdentity: () => undefined });
  expect(wrongKey.secure).toBe(false);
  await eventually(() => /refused 127\.0\.0\.4: /.test(routerLog), 5000, "the router's refusals in its log");
  expect(routerLog).toMatch(/refused 127\.0\.0\.2: TLS handshake failed/);
  expect(routerLog).toMatch(/refused 127\.0\.0\.3: it has another network secret \(key id 0123456789abcdef; ours is [0-9a-f]{16}\)/);
  expect(routerLog).toMatch(/refused 127\.0\.0\.4: TLS handshake failed/);
});

test("a session ticket from a handshake with the key does not open a link: each link proves the key afresh", async () => {
  // A member's own handshake, for its ticket (a stranger never gets one: it takes the key).
  const keyed = await dial("127.0.0.5", { pskCallback: () => ({ psk: KEY.psk, identity: KEY.identity }), checkServerIdentity: () => undefined });
  expect(keyed.secure).toBe(true);
  const ticket = await new Promise<Buffer>((done) => keyed.socket.once("session", done));
  keyed.socket.destroy();
  // The ticket alone, no key: the handshake resumes, and the router must still refuse the link.
  const resumed = await dial("127.0.0.5", { session: ticket, checkServerIdentity: () => undefined });
  const answers: Buffer[] = [];
  resumed.socket.on("data", (chunk: Buffer) => answers.push(chunk));
  if (resumed.secure) {
    expect(resumed.socket.isSessionReused()).toBe(true);
    resumed.socket.write(frameOf(Kind.hello, 1, helloBody("client")));
  }
  // Closed by the router, or answered (a welcome: the link is open).
  await eventually(() => resumed.socket.destroyed || answers.length > 0, 10_000, "the router closing or answering");
  resumed.socket.destroy();
  expect(Buffer.concat(answers).toString("latin1")).toBe("");
  await eventually(() => /refused 127\.0\.0\.5: /.test(routerLog), 5000, "the router's refusal in its log");
  expect(routerLog).toMatch(/refused 127\.0\.0\.5: it completed a TLS handshake without our network key/);
});
