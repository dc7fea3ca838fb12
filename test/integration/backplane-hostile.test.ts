import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { frameOf, HostilePeer, KIND } from "../../bench/hostile-peer.js";
import { freePort } from "../../lib/net/free-port.js";
import { ECHO, TestHost, eventually, sleep, type Served } from "../helpers.js";

/**
 * A stranger on the NATS server plays a hostile gateway at the byte level: its own NATS
 * client, its own frames and listings, against a labc host whose router is its site's gateway
 * (nats-server on 127.0.0.1, a port of the test's own).
 */

const noNats = spawnSync("nats-server", ["--version"]).status !== 0;
let nats: ChildProcess;
let host: TestHost;
let served: Served;
let stranger: NatsConnection;
let echoServer = "";
const bare = (frame: Buffer) => frame.subarray(4);
const decode = (data: Uint8Array) => {
  const frame = Buffer.from(data);
  return { kind: frame[0], body: JSON.parse(frame.subarray(12, 12 + frame.readUInt32BE(8)).toString()) };
};

beforeAll(async () => {
  if (noNats) return;
  const port = await freePort();
  nats = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  await sleep(300);
  stranger = await connect({ servers: `nats://127.0.0.1:${port}` });
  const listings = stranger.subscribe("labc.main.hosts.target");
  host = await TestHost.start();
  Object.assign(host.env, { LABC_HOST_ID: "target", LABC_BACKPLANE_NATS: `nats://127.0.0.1:${port}` });
  served = await host.serve([ECHO]);
  for await (const msg of listings) {
    const listed = msg.json<{ servers?: { id: string; pid: number }[] }>().servers?.find((server) => server.pid === served.pid);
    if (listed) {
      echoServer = listed.id;
      break;
    }
  }
}, 30_000);
afterAll(async () => {
  if (noNats) return;
  await stranger.close();
  await host.cleanup();
  nats.kill("SIGKILL");
});

describe.skipIf(noNats)("a hostile client of the NATS server", () => {
  test("a well-formed request is answered; garbage, a wrong kind and a lying frame are refused, and the gateway goes on", async () => {
    const asked = (bytes: Uint8Array) => stranger.request("labc.main.req.target", bytes, { timeout: 3000 }).then((msg) => decode(msg.data));
    expect(await asked(bare(frameOf(KIND.req, 1, { fn: "echo", args: ["hi"], target: echoServer })))).toEqual({ kind: KIND.rep, body: { v: "hi" } });
    const garbage = await asked(Buffer.from("\x00\x01 not a frame at all"));
    expect(garbage.kind).toBe(KIND.exc);
    expect(garbage.body.code).toBe("LABC_BAD_FRAME");
    // A publication where a request belongs, a body that lies about its length, fields of the wrong type.
    for (const bytes of [
      bare(frameOf(KIND.pub, 0, { topic: "x", args: [] })),
      Buffer.concat([bare(frameOf(KIND.req, 2, { fn: "echo", args: [] })), Buffer.from("trailing")]),
      bare(frameOf(KIND.req, 3, { fn: 42, args: "no", target: echoServer })),
    ]) {
      expect((await asked(bytes)).body.code).toBe("LABC_BAD_FRAME");
    }
    // What other hosts may not call stays out of reach: the far flag is set by the gateway.
    const local = await asked(bare(frameOf(KIND.req, 4, { fn: "labc.metrics", args: [], target: echoServer })));
    expect(local.kind).toBe(KIND.exc);
    expect(await host.cli(["call", "echo", "still"]).then((r) => r.stdout)).toBe("still\n");
  });

  test("an answer past the NATS server's max_payload: the other site's caller is told why, and the server's link and its other calls go on", async () => {
    const forged = await HostilePeer.connect(host.port);
    try {
      forged.hello("server", { id: "bigback", port: served.port }, 1);
      await forged.expect((f) => f.id === 1 && f.kind === KIND.rep);
      forged.send(frameOf(KIND.announce, 2, { functions: [{ name: "big", scope: "network", visibility: "public" }], topics: [] }));
      await forged.expect((f) => f.id === 2 && f.kind === KIND.rep);
      const labc = host.runtime();
      await eventually(async () => (await labc.admin.sync(), labc.admin.pool.servers.has("bigback")));
      const far = stranger.request("labc.main.req.target", bare(frameOf(KIND.req, 1, { fn: "big", args: ["large"], target: "bigback" })), { timeout: 3000 });
      const near = labc.admin.forward("bigback", "big", ["small"], 3000);
      const large = await forged.expect((f) => f.kind === KIND.req && f.body.args[0] === "large");
      const small = await forged.expect((f) => f.kind === KIND.req && f.body.args[0] === "small");
      // nats-server's max_payload is 1 MiB by default.
      forged.send(frameOf(KIND.rep, large.id, { v: "y".repeat(1.5 * 1024 * 1024) }));
      forged.send(frameOf(KIND.rep, small.id, { v: "answered" }));
      const answer = decode((await far).data);
      expect(answer.kind).toBe(KIND.exc);
      expect(answer.body).toMatchObject({ code: "LABC_LIMIT", data: { limit: "max_payload" } });
      expect(await near).toBe("answered");
      expect(forged.isClosed).toBe(false);
    } finally {
      forged.destroy();
    }
  });

  test("a listing with malformed entries brings in only the well-formed ones; a bye from nobody changes nothing", async () => {
    const listing = (servers: unknown[], extra: object = {}) =>
      Buffer.from(JSON.stringify({ hostId: "evil", name: "evil", instance: "i1", version: 1, servers, hosts: [{ hostId: "evil", name: "evil" }, { nope: 1 }], ...extra }));
    const good = { id: "evil-server", host: "evil", hostId: "evil", address: "10.9.9.9", port: 1, pid: 1, functions: [{ name: "evil.fn", scope: "network", visibility: "public" }], topics: [] };
    const bad = { id: "bad-server", host: "evil", hostId: "evil", address: 7, port: -1, pid: "x", functions: [{ name: "bad.fn" }], topics: [3] };
    stranger.publish("labc.main.hosts.evil", Buffer.from('{"hostId": "evil", "version": "not a number"}'));
    stranger.publish("labc.main.hosts.evil", Buffer.from("not json"));
    stranger.publish("labc.main.hosts.evil", listing([bad, good]));
    await eventually(async () => (await host.cli(["ls"])).stdout.includes("evil.fn"), 5000, "the well-formed entry listed");
    expect((await host.cli(["ls"])).stdout).not.toContain("bad.fn");
    const hosts = JSON.parse((await host.cli(["hosts", "--json"])).stdout) as { name: string; site?: string }[];
    expect(hosts).toHaveLength(2);
    expect(hosts.find((h) => h.name === "evil")).toMatchObject({ site: "evil" });
    // A call to it goes to the backplane, and nobody there answers: a clear error, fast.
    const call = await host.cli(["call", "--timeout", "2", "evil.fn"]);
    expect(call.code).toBe(1);
    expect(call.stderr).toMatch(/evil-server on evil \(its site's gateway does not answer on NATS\).*"evil\.fn".*LABC_CONNECTION_LOST/);
    // A bye for another site, and one for itself: only the latter removes it.
    stranger.publish("labc.main.hosts.nobody", Buffer.from(JSON.stringify({ hostId: "nobody", name: "x", instance: "y", version: 1, bye: true })));
    await sleep(300);
    expect((await host.cli(["ls"])).stdout).toContain("evil.fn");
    stranger.publish("labc.main.hosts.evil", listing([], { bye: true }));
    await eventually(async () => !(await host.cli(["ls"])).stdout.includes("evil.fn"), 5000, "evil gone");
    expect(await host.cli(["call", "echo", "fine"]).then((r) => r.stdout)).toBe("fine\n");
  });
});

/**
 * A nats-server started with `serverArgs` (and a client of the test's own with `client`
 * options), one gateway that it accepts (`env` of `welcome`) and one it refuses (`refused`):
 * the first one's beats are heard, the second's log says why (`reason`) and its LAN goes on.
 */
async function oneInOneOut(
  serverArgs: string[],
  client: Partial<ConnectionOptions>,
  welcome: NodeJS.ProcessEnv,
  refused: NodeJS.ProcessEnv,
  reason: RegExp,
): Promise<void> {
  const port = await freePort();
  const server = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port), ...serverArgs], { stdio: "ignore" });
  const hosts: TestHost[] = [];
  try {
    await sleep(300);
    const listings = await connect({ servers: `nats://127.0.0.1:${port}`, ...client });
    const heard = new Set<string>();
    listings.subscribe("labc.main.hosts.*", { callback: (_error, msg) => void heard.add(msg.subject) });
    for (const [id, env] of [["welcome", welcome], ["refused", refused]] as const) {
      const host = await TestHost.start();
      hosts.push(host);
      Object.assign(host.env, { LABC_HOST_ID: id, LABC_BACKPLANE_NATS: `nats://127.0.0.1:${port}`, ...env });
      await host.serve([ECHO]);
    }
    await eventually(() => heard.has("labc.main.hosts.welcome"), 5000, "the welcome gateway's beats");
    const log = () => readFileSync(join(hosts[1]!.dir, "labc", `router-${hosts[1]!.port}.log`), "utf8");
    await eventually(() => reason.test(log()), 5000, "the refused gateway's log");
    expect(heard.has("labc.main.hosts.refused")).toBe(false);
    expect((await hosts[1]!.cli(["call", "echo", "lan"])).stdout).toBe("lan\n");
    await listings.close();
  } finally {
    for (const host of hosts) await host.cleanup();
    server.kill("SIGKILL");
  }
}

describe.skipIf(noNats)("a NATS server that asks for credentials", () => {
  test("a gateway with the right user and password links; with a wrong one it says why in its log, and its LAN goes on", async () => {
    await oneInOneOut(
      ["--user", "lab", "--pass", "s3cret"],
      { user: "lab", pass: "s3cret" },
      { LABC_BACKPLANE_USER: "lab", LABC_BACKPLANE_PASS: "s3cret" },
      { LABC_BACKPLANE_USER: "lab", LABC_BACKPLANE_PASS: "guess" },
      /backplane: cannot link to NATS .*[Aa]uthorization/,
    );
  });
});

const noOpenssl = spawnSync("openssl", ["version"]).status !== 0;

describe.skipIf(noNats || noOpenssl)("a NATS server that speaks TLS only", () => {
  test("a gateway given the CA links over TLS; one without it says why in its log, and its LAN goes on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "labc-nats-tls-"));
    const openssl = (...args: string[]) => {
      const run = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
      if (run.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${run.stderr}`);
    };
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=labc test CA");
    openssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
    writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "ext.cnf");
    const ca = join(dir, "ca.pem");
    try {
      await oneInOneOut(
        ["--tls", "--tlscert", join(dir, "server.pem"), "--tlskey", join(dir, "server.key")],
        { tls: { caFile: ca } },
        { LABC_BACKPLANE_TLS_CA: ca },
        {},
        /backplane: cannot link to NATS .*certificate/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
