import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { KIND } from "../../bench/hostile-peer.js";
import { Lan, lanUnavailable, sleep, within, type LanHost } from "./lan.js";

/**
 * What another host learns of this host's functions from its router (issue 27, 8a): a local,
 * host-scoped or secret function is, to another host, a name that does not exist (a call gets
 * LABC_NO_SUCH_FUNCTION). Its name must not come out of `labc.metrics`, `labc.hosts` or the
 * notices a router sends its links either. host2 is a member asking the usual way; host3 is a
 * stranger who says hello as a router by hand (an open network lets any router link).
 */

const why = lanUnavailable();
const HIDDEN = ["loc", "hostScoped", "sec", "goneLocal"];

type Metrics = { host: string; processes: { served: { fn: string }[]; called: { fn: string }[]; connections: { peer: string }[] }[] };
const names = (host: Metrics) => host.processes.flatMap((p) => [...p.served, ...p.called].map((f) => f.fn));

describe.skipIf(why)("labc.metrics and labc.hosts asked by another host", () => {
  let lan: Lan;
  let h1: LanHost;
  let h2: LanHost;
  let stranger: LanHost;

  beforeAll(async () => {
    lan = Lan.create(3);
    [h1, h2, stranger] = lan.hosts as [LanHost, LanHost, LanHost];
    await h1.serve([
      h1.service("Lab", {
        echo: 'return "host1:" + args[0];',
        loc: { decorator: 'register({ visibility: "local" })', body: 'return "loc";' },
        hostScoped: { decorator: 'register({ scope: "host" })', body: 'return "hostScoped";' },
        sec: { decorator: 'register({ visibility: "secret" })', body: 'return "sec";' },
      }),
    ]);
    // A process of host1 that calls the local function: its metrics hold it on the calling side.
    const caller = join(h1.dir, "Caller.ts");
    writeFileSync(caller, 'import { call, register } from "labc";\nexport class Caller {\n  @register() async viaLoc() { return call("loc"); }\n}\n');
    await h1.serve([caller]);
    await h2.serve([h2.service("Two", { two: "return 2;" })]);
    await within(10000, "host1 and host2 linked", async () => (await h2.hosts()).filter((h) => h.functions > 0).length === 2);
    for (const fn of ["loc", "hostScoped", "viaLoc"]) expect((await h1.cli(["call", fn])).code).toBe(0);
    expect((await h2.cli(["call", "echo", '"x"'])).stdout).toBe("host1:x\n");
  }, 60000);
  afterAll(() => lan?.cleanup());

  test("host1's own labc metrics names its local functions; host2's labc metrics --all shows host1 without them", async () => {
    const own = await h1.cli(["metrics", "--json"]);
    expect(own.stderr).toBe("");
    const ownNames = names(JSON.parse(own.stdout));
    for (const fn of ["loc", "hostScoped", "viaLoc", "echo"]) expect(ownNames).toContain(fn);

    const all = await h2.cli(["metrics", "--all", "--json"]);
    expect(all.stderr).toBe("");
    const host1 = (JSON.parse(all.stdout) as Metrics[]).find((host) => host.host === "host1")!;
    expect(host1).toBeDefined();
    const seen = names(host1);
    expect(seen).toContain("echo");
    expect(seen).toContain("viaLoc");
    for (const fn of HIDDEN) expect(seen).not.toContain(fn);
    // Who is at the other end of host1's connections is host1's business.
    expect(host1.processes.flatMap((p) => p.connections.map((c) => c.peer)).every((peer) => peer === "")).toBe(true);
  });

  test("a router linked by hand learns no local name: not from labc.metrics, labc.hosts or a withdraw notice", async () => {
    const goneFile = h1.service("Gone", {
      gonePublic: 'return "gone";',
      goneLocal: { decorator: 'register({ visibility: "local" })', body: 'return "goneLocal";' },
    });
    const gone = await h1.serve([goneFile]);
    expect((await h1.cli(["call", "goneLocal"])).stdout).toBe("goneLocal\n");
    const ownCount = (await h1.hosts()).find((h) => h.name === "host1")!.functions;

    const hello = { kind: KIND.hello, id: 1, body: { v: 1, role: "router", id: "stranger-run", pid: 4242, host: "stranger", hostId: "id-stranger", port: 55555 } };
    const asks = [
      { kind: KIND.req, id: 2, body: { fn: "labc.metrics", args: [] } },
      { kind: KIND.req, id: 3, body: { fn: "labc.hosts", args: [] } },
    ];
    // The stranger stays linked for 6 s; meanwhile Gone stops, and its withdraw goes to the links.
    const linked = stranger.stranger("talk", { host: h1.address, port: 55555, frames: [hello, ...asks], answers: 1000, waitMs: 6000 }, 30000);
    // Well within the link's life: the stranger answers no heartbeat, so host1 drops it as dead
    // about 2 s after it linked (4 silent beats), and a withdraw after that never reaches it.
    await sleep(800);
    gone.kill("SIGTERM");
    const { received } = await linked;
    const byId = (id: number) => received.find((frame: any) => frame.kind === KIND.rep && frame.id === id);
    expect(byId(1)).toBeDefined();

    const metrics = byId(2)!.body.v as Metrics;
    expect(metrics.host).toBe("host1");
    expect(names(metrics)).toContain("echo");
    for (const fn of HIDDEN) expect(names(metrics)).not.toContain(fn);

    const hosts = byId(3)!.body.v as { name: string; functions: number }[];
    const farCount = hosts.find((h) => h.name === "host1")!.functions;
    // loc, hostScoped, sec and goneLocal (and the router's own host-only functions) are not counted.
    expect(farCount).toBeLessThanOrEqual(ownCount - 4);

    const withdraws = received.filter((frame: any) => frame.kind === KIND.withdraw);
    expect(withdraws.length).toBeGreaterThan(0);
    expect(withdraws.flatMap((frame: any) => frame.body.functions)).toContain("gonePublic");
    const everything = JSON.stringify(received);
    for (const fn of HIDDEN) expect(everything).not.toContain(`"${fn}"`);
  }, 40000);

  test("a connection from another host that is no router link gets no metrics at all", async () => {
    const hello = { kind: KIND.hello, id: 1, body: { v: 1, role: "client", id: "stranger", pid: 4242, host: "stranger", hostId: "id-stranger" } };
    const answer = await stranger.stranger("talk", { host: h1.address, port: 55555, frames: [hello, { kind: KIND.req, id: 2, body: { fn: "labc.metrics", args: [] } }], answers: 2, waitMs: 3000 });
    expect(answer.received.find((frame: any) => frame.id === 2)).toMatchObject({ kind: KIND.exc, body: { code: "LABC_NOT_PERMITTED" } });
  });
});
