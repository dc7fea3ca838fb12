import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { frameOf, KIND } from "../../bench/hostile-peer.js";
import { freePort } from "../../lib/net/free-port.js";
import { ECHO, TestHost, eventually, sleep } from "../helpers.js";

/**
 * ServiceControl does not cross sites (docs/backplane.md#trust): with a network secret every host
 * of a LAN proved it, but a caller from another site proved only a NATS login. Two sites on
 * 127.0.0.1 with one secret, joined by a nats-server of the test's own: site a (gateway alpha,
 * which opts in with service_control.remote = true), site b (gateway beta and its LAN mate beta2,
 * linked by static peers). A NATS client of the test's own plays whoever may publish on
 * `labc.main.>`, with labc frames of its own, on the gateway's request subject and on the
 * ServiceControl server's own subject.
 */

const noNats = spawnSync("nats-server", ["--version"]).status !== 0;
const secret = `labc1_${randomBytes(32).toString("base64url")}`;
let nats: ChildProcess;
let stranger: NatsConnection;
let alpha: TestHost;
let beta: TestHost;
let beta2: TestHost;
/** The id of ServiceControl's server (the router's own) on each host, as site a lists it. */
const control: Record<string, string> = {};
let betaControlOnNats = false;

interface Listed {
  id: string;
  hostId: string;
  nats?: boolean;
  functions: { name: string }[];
}

const bare = (frame: Buffer) => frame.subarray(4);
/** A `rep` or `exc` frame: its kind and body (`prefixed`: with its length prefix, as on a server's subject). */
function decode(data: Uint8Array, prefixed: boolean): { kind: number; body: Record<string, unknown> } {
  const frame = Buffer.from(data).subarray(prefixed ? 4 : 0);
  return { kind: frame[0]!, body: JSON.parse(frame.subarray(12, 12 + frame.readUInt32BE(8)).toString()) };
}
/** A request through site b's gateway, for server `target`. */
const viaGateway = async (target: string, fn: string, args: unknown[] = []) =>
  decode((await stranger.request("labc.main.req.site-b", bare(frameOf(KIND.req, 1, { fn, args, target })), { timeout: 5000 })).data, false);
/** A request on a server's own subject (docs/backplane.md#direct-calls), without a hello. */
const direct = async (server: string, fn: string, args: unknown[] = []) =>
  decode((await stranger.request(`labc.main.srv.${server}`, frameOf(KIND.req, 1, { fn, args }), { timeout: 5000 })).data, true);

const services = async (host: TestHost) => {
  const result = await host.cli(["services", "--json"]);
  expect(result.stderr).toBe("");
  return JSON.parse(result.stdout) as { name: string; state: string }[];
};

beforeAll(async () => {
  if (noNats) return;
  const natsPort = await freePort();
  nats = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(natsPort)], { stdio: "ignore" });
  await sleep(300);
  const url = `nats://127.0.0.1:${natsPort}`;
  stranger = await connect({ servers: url });
  alpha = await TestHost.start();
  beta = await TestHost.start();
  beta2 = await TestHost.start();
  Object.assign(alpha.env, { LABC_SECRET: secret, LABC_HOST_ID: "site-a", LABC_HOST_NAME: "alpha", LABC_BACKPLANE_NATS: url, LABC_SERVICE_CONTROL_REMOTE: "true" });
  Object.assign(beta.env, { LABC_SECRET: secret, LABC_HOST_ID: "site-b", LABC_HOST_NAME: "beta", LABC_BACKPLANE_NATS: url });
  Object.assign(beta2.env, { LABC_SECRET: secret, LABC_HOST_ID: "site-b2", LABC_HOST_NAME: "beta2", LABC_DISCOVERY_PEERS: `127.0.0.1:${beta.port}` });
  for (const host of [alpha, beta, beta2]) {
    const file = join(host.dir, "marker.ts");
    writeFileSync(file, 'import { register } from "labc";\nexport class Marker {\n  @register() markerPid() { return process.pid; }\n}\n');
    const installed = await host.cli(["install", file], {}, 60_000);
    expect(installed.stderr).toBe("");
  }
  // Each host's echo keeps its router up between the test's commands.
  await beta.serve([ECHO]);
  await beta2.serve([ECHO]);
  await alpha.serve([ECHO]);
  await eventually(
    async () => {
      const listed = JSON.parse((await alpha.cli(["ls", "--json"])).stdout || "[]") as Listed[];
      for (const server of listed) {
        if (server.functions.some((f) => f.name === "service_control.listServices")) control[server.hostId] = server.id;
        if (server.hostId === "site-b" && control["site-b"] === server.id) betaControlOnNats = server.nats === true;
      }
      return control["site-a"] !== undefined && control["site-b"] !== undefined && control["site-b2"] !== undefined;
    },
    20_000,
    "site a listing ServiceControl of beta and beta2",
  );
}, 90_000);

afterAll(async () => {
  if (noNats) return;
  await stranger?.close();
  for (const host of [alpha, beta, beta2]) await host?.cleanup();
  nats.kill("SIGKILL");
});

describe.skipIf(noNats)("ServiceControl does not cross sites", () => {
  test("a NATS participant: refused through the gateway and on the server's own subject; nothing listed, nothing started", async () => {
    // The router's ServiceControl server takes calls on NATS itself (beta is a gateway's host).
    expect(betaControlOnNats).toBe(true);
    const asked: { kind: number; body: Record<string, unknown> }[] = [];
    for (const target of [control["site-b"]!, control["site-b2"]!]) {
      asked.push(await viaGateway(target, "service_control.listServices"));
      asked.push(await viaGateway(target, "service_control.startService", ["Marker"]));
      asked.push(await viaGateway(target, "service_control.serviceLogs", ["Marker"]));
      asked.push(await viaGateway(target, "service_control.stopService", ["Marker"]));
    }
    asked.push(await direct(control["site-b"]!, "service_control.listServices"));
    asked.push(await direct(control["site-b"]!, "service_control.startService", ["Marker"]));
    for (const answer of asked) {
      expect.soft(answer).toMatchObject({ kind: KIND.exc, body: { code: "LABC_NOT_PERMITTED" } });
      expect.soft(JSON.stringify(answer.body)).not.toMatch(/markerPid|"state"/);
    }
    expect(String(asked[1]!.body.message)).toMatch(/^beta does not let other sites start Marker: .*status page.*service_control\.remote = true/);
    // The same server's other functions, and other servers, still answer other sites.
    expect(await viaGateway(control["site-b2"]!, "core.ping")).toMatchObject({ kind: KIND.rep, body: { v: { host: "beta2" } } });
    expect(await direct(control["site-b"]!, "core.ping")).toMatchObject({ kind: KIND.rep, body: { v: { host: "beta" } } });
    for (const host of [beta, beta2]) expect((await services(host)).find((s) => s.name === "Marker")).toMatchObject({ state: "stopped" });
  });

  test("a labc caller on another site gets the reason and what to do; calls across sites go on", async () => {
    // From alpha (a gateway's host): to beta on NATS directly, to beta2 through both gateways.
    for (const host of ["beta", "beta2"]) {
      const started = await alpha.cli(["start-service", "Marker", "--host", host], {}, 30_000);
      expect(started.code).toBe(1);
      expect(started.stderr).toMatch(new RegExp(`${host} does not let other sites start Marker: ServiceControl does not cross the NATS backplane.*${host}'s status page.*LABC_NOT_PERMITTED`));
      expect((await alpha.cli(["services", "--host", host])).stderr).toMatch(/does not let other sites list its services.*LABC_NOT_PERMITTED/);
      expect((await alpha.cli(["logs", "Marker", "--host", host])).stderr).toMatch(/LABC_NOT_PERMITTED/);
      const pinged = await alpha.cli(["call", "--host", host, "core.ping"]);
      expect(pinged).toMatchObject({ code: 0, stdout: expect.stringContaining(host) });
    }
    for (const host of [beta, beta2]) expect((await services(host)).find((s) => s.name === "Marker")).toMatchObject({ state: "stopped" });
  });

  test("within a LAN a member still starts and stops services; a host that opts in is open to other sites", async () => {
    const started = await beta2.cli(["start-service", "Marker", "--host", "beta"], {}, 60_000);
    expect(started.stderr).toBe("");
    expect((await services(beta)).find((s) => s.name === "Marker")).toMatchObject({ state: "running" });
    expect((await beta.cli(["services", "--host", "beta2", "--json"])).code).toBe(0);
    expect((await beta2.cli(["stop-service", "Marker", "--host", "beta"], {}, 30_000)).stderr).toBe("");
    expect((await services(beta)).find((s) => s.name === "Marker")).toMatchObject({ state: "stopped" });
    // alpha says service_control.remote = true: its choice, as without a secret.
    const open = await stranger.request("labc.main.req.site-a", bare(frameOf(KIND.req, 1, { fn: "service_control.listServices", args: [], target: control["site-a"] })), { timeout: 5000 });
    expect(decode(open.data, false)).toMatchObject({ kind: KIND.rep, body: { v: [{ name: "Marker", state: "stopped" }] } });
    const fromB = await beta.cli(["services", "--host", "alpha", "--json"]);
    expect(fromB.stderr).toBe("");
    expect(JSON.parse(fromB.stdout)).toMatchObject([{ name: "Marker" }]);
  });
});
