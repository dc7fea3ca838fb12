import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { Lan, lanUnavailable, sleep, within, type LanHost } from "./lan.js";

const why = lanUnavailable();

let lan: Lan;
let h1: LanHost;
let h2: LanHost;
let h3: LanHost;

const listen = { decorator: 'subscribe("net.#")', body: "this.heard.push(args[0]);" };

describe.skipIf(why)("perspectives, visibility, realms and the root port, 3 hosts in network namespaces", () => {
  beforeAll(async () => {
    lan = Lan.create(3);
    [h1, h2, h3] = lan.hosts as [LanHost, LanHost, LanHost];
    await h1.serve([h1.service("One", { where: 'return "host1";' })]);
    await h2.serve([
      h2.service("Two", {
        where: 'return "host2";',
        loc: { decorator: 'register({ visibility: "local" })', body: 'return "loc";' },
        priv: { decorator: 'register({ visibility: "private" })', body: 'return "priv";' },
        hostScoped: { decorator: 'register({ scope: "host" })', body: 'return "hostScoped";' },
        sec: { decorator: 'register({ visibility: "secret" })', body: 'return "sec";' },
        listen,
        heard2: "return this.heard;",
      }),
    ]);
    await h2.serve([h2.service("Optics", { optics: 'return "optics";' })], { LABC_NETWORK_REALM: "lab1.optics" });
    // host3's server listens on loopback only: other hosts reach it through the routers alone.
    await h3.serve([h3.service("Three", { where: 'return "host3";', on_host3: 'return "host3";', listen, heard3: "return this.heard;" })], {
      LABC_SERVER_ADDRESS: "127.0.0.1",
    });
    for (const host of lan.hosts) {
      await within(8000, `${host.name} linked`, async () => {
        const seen = await host.hosts();
        return seen.length === 3 && seen.every((h) => h.functions > 0);
      });
    }
  }, 60000);
  afterAll(() => lan?.cleanup());

  const out = async (host: LanHost, args: string[]) => {
    const result = await host.cli(args);
    return result.code === 0 ? result.stdout.trim() : result.stderr.trim();
  };

  test("getHost's perspective: that host's functions come first", async () => {
    expect(await out(h1, ["call", "where"])).toBe("host1");
    expect(await out(h1, ["call", "--host", "host2", "where"])).toBe("host2");
    expect(await out(h1, ["call", "--host", "host3", "where"])).toBe("host3");
    expect(await out(h1, ["call", "--host", "host9", "where"])).toMatch(/no host "host9" is known \(known: host1, host2, host3\)/);
  });

  test("local and host-scoped functions answer their own host only", async () => {
    for (const name of ["loc", "hostScoped"]) {
      expect(await out(h2, ["call", name])).toBe(name);
      expect(await out(h1, ["call", name])).toMatch(new RegExp(`no function "${name}"`));
      expect(await out(h1, ["call", "--host", "host2", name])).toMatch(new RegExp(`no function "${name}"`));
    }
  });

  test("private functions: not listed or resolved elsewhere, callable when the caller names the host", async () => {
    expect(await out(h1, ["call", "priv"])).toMatch(/no function "priv"/);
    expect(await out(h1, ["call", "--host", "host2", "priv"])).toBe("priv");
    expect(await out(h2, ["call", "priv"])).toBe("priv");
    expect(await out(h1, ["ls"])).not.toMatch(/^priv\s/m);
    expect(await out(h2, ["ls"])).toMatch(/^priv\s/m);
  });

  test("secret functions are never callable from outside their server", async () => {
    expect(await out(h2, ["call", "sec"])).toMatch(/no function "sec"/);
    expect(await out(h1, ["call", "--host", "host2", "sec"])).toMatch(/no function "sec"/);
  });

  test("realms: a caller sees its realm and the realms above it only", async () => {
    expect(await out(h1, ["call", "optics"])).toMatch(/no function "optics"/);
    expect(await out(h1, ["call", "optics", "--set", "network.realm=lab1"])).toMatch(/no function "optics"/);
    expect(await out(h1, ["call", "optics", "--set", "network.realm=lab1.optics"])).toBe("optics");
    expect(await out(h3, ["call", "optics", "--set", "network.realm=lab1.optics.bench2"])).toBe("optics");
    // A realm still sees the functions of no realm.
    expect(await out(h1, ["call", "--host", "host3", "where", "--set", "network.realm=lab1.optics"])).toBe("host3");
  });

  test("callAll answers from every host that offers the function", async () => {
    const result = await h1.cli(["call", "--all", "where", "--json"]);
    const answers = JSON.parse(result.stdout) as { host: string; value: string }[];
    expect(answers.map((a) => `${a.host}=${a.value}`).sort()).toEqual(["host1=host1", "host2=host2", "host3=host3"]);
  });

  test("calls and publications reach a server whose port only its own host can open, through the routers", async () => {
    expect(await out(h1, ["call", "on_host3"])).toBe("host3");
    const published = await h1.cli(["publish", "net.news", "hello"]);
    expect(published.stderr).toMatch(/to 2 server\(s\)/);
    await within(3000, "both subscribers hearing it", async () => {
      const two = JSON.parse(await out(h1, ["call", "heard2", "--json"]));
      const three = JSON.parse(await out(h1, ["call", "heard3", "--json"]));
      return two.includes("hello") && three.includes("hello");
    });
  });

  test("every host's router answers core.ping and core.info; labc.localhost is this host", async () => {
    expect(JSON.parse(await out(h1, ["call", "core.ping", "--json"]))).toMatchObject({ host: "host1", hostId: "id-host1" });
    const version = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version;
    const info = JSON.parse(await out(h1, ["call", "--host", "host2", "core.info", "--json"]));
    expect(info).toMatchObject({ host: "host2", hostId: "id-host2", version, cpus: expect.any(Number), node: process.version });
    expect(info.state).toMatch(/^[0-9a-f]{12}$/);
    expect(info.load).toHaveLength(3);
    expect(info.uptimeS).toBeGreaterThanOrEqual(0);
    const all = JSON.parse(await out(h1, ["call", "--all", "core.ping", "--json"])) as { value: { host: string } }[];
    expect(all.map((answer) => answer.value.host).sort()).toEqual(["host1", "host2", "host3"]);
    const result = await h1.script([
      "const nearest = await labc.network.core.ping();",
      'const far = await labc.getHost("host3").network.core.ping();',
      "const here = await labc.localhost.network.core.info();",
      "console.log(JSON.stringify([nearest.host, far.host, here.host, labc.localhost.name]));",
    ]);
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual(["host1", "host3", "host1", "host1"]);
  });

  test("labc metrics --all and labc top show every linked host's served functions", async () => {
    for (let i = 0; i < 5; i++) expect((await h2.cli(["call", "--host", "host1", "where"])).stdout).toBe("host1\n");
    const all = JSON.parse((await h2.cli(["metrics", "--all", "--json"])).stdout) as { host: string; processes: { served: { fn: string; calls: number }[] }[] }[];
    expect(all[0]!.host).toBe("host2");
    expect(all.map((host) => host.host).sort()).toEqual(["host1", "host2", "host3"]);
    const servedOn1 = all.find((host) => host.host === "host1")!.processes.flatMap((p) => p.served).find((f) => f.fn === "where");
    expect(servedOn1?.calls).toBeGreaterThanOrEqual(5);
    const top = JSON.parse((await h2.cli(["top", "--json", "--interval", "0.2"])).stdout) as { functions: { host: string; fn: string; calls: number }[] };
    expect(top.functions.find((f) => f.host === "host1" && f.fn === "where")?.calls).toBeGreaterThanOrEqual(5);
    // A process elsewhere cannot ask a router for the network's metrics: only its own host's callers.
    const hello = { kind: 1, id: 1, body: { v: 1, role: "client", id: "stranger", pid: 4242, host: "stranger", hostId: "stranger" } };
    const ask = { kind: 2, id: 2, body: { fn: "labc.metrics.network", args: [] } };
    const answer = await h3.stranger("talk", { host: h1.address, port: 55555, frames: [hello, ask], answers: 2, waitMs: 5000 });
    expect(answer.received.find((frame: { id: number }) => frame.id === 2)).toMatchObject({ kind: 4, body: { code: "LABC_NOT_PERMITTED" } });
  });

  test("reqpub: the nearest subscriber answers, every other gets a publication, each once", async () => {
    const askers = await Promise.all(
      [h2, h3].map((host) =>
        host.serve([
          host.service(`Asker${host.name}`, {
            ask: { decorator: 'subscribe("ask.q")', body: `this.heard.push(args[0]); return "answered by ${host.name}";` },
            [`heardAsk${host.name}`]: "return this.heard;",
          }),
        ]),
      ),
    );
    try {
      await within(8000, "host1 knowing both askers", async () => (await h1.cli(["call", "heardAskhost3"])).code === 0 && (await h1.cli(["call", "heardAskhost2"])).code === 0);
      const result = await h1.script([
        'const first = await labc.reqpub("ask.q", "q1");',
        'await labc.subscribe((x) => `answered by the caller (${x})`, "ask.q");',
        'const second = await labc.reqpub("ask.q", "q2");',
        'const none = await labc.reqpub("ask.none").catch((error) => `${error.code}: ${error.message}`);',
        "console.log(JSON.stringify([first, second, none]));",
      ]);
      expect(result.stderr).toBe("");
      const [first, second, none] = JSON.parse(result.stdout) as string[];
      expect(first).toMatch(/^answered by host[23]$/);
      expect(second).toBe("answered by the caller (q2)");
      expect(none).toMatch(/^LABC_NO_SUCH_FUNCTION: .*no subscriber of "ask\.none"/);
      const heard = async (name: string) => JSON.parse(await out(h1, ["call", name, "--json"])) as string[];
      await within(3000, "both askers hearing both", async () => {
        const [two, three] = [await heard("heardAskhost2"), await heard("heardAskhost3")];
        return two.length === 2 && three.length === 2;
      });
      await sleep(300);
      expect(await heard("heardAskhost2")).toEqual(["q1", "q2"]);
      expect(await heard("heardAskhost3")).toEqual(["q1", "q2"]);
    } finally {
      for (const asker of askers) asker.kill("SIGTERM");
    }
  });

  test("targeted publish reaches the subscribers of one host, or one server, and no one else", async () => {
    // A second subscriber on host2, so that its servers can be told apart.
    const again = await h2.serve([h2.service("TwoAgain", { listen, heardAgain: "return this.heard;" })]);
    try {
      await within(8000, "host1 knowing the second subscriber", async () => (await h1.cli(["call", "heardAgain"])).code === 0);
      const toHost3 = await h1.cli(["publish", "--host", "host3", "net.only3", "x3"]);
      expect(toHost3.stderr).toBe("labc: published on net.only3 to 1 server(s) on host3\n");
      const toHost2 = await h1.cli(["publish", "--host", "host2", "net.only2", "x2"]);
      expect(toHost2.stderr).toBe("labc: published on net.only2 to 2 server(s) on host2\n");
      expect(await out(h1, ["publish", "--host", "host9", "net.x", "x"])).toMatch(/no host "host9" is known/);
      // One server, by its port, from a script on host1.
      const answers = JSON.parse((await h1.cli(["call", "--all", "heardAgain", "--json"])).stdout) as { port: number }[];
      const published = await h1.script([`console.log(await labc.getHost("host2", ${answers[0]!.port}).publish("net.onlyOne", "x1"));`]);
      expect(published).toMatchObject({ code: 0, stdout: "1\n" });
      const heard = async (name: string) => JSON.parse(await out(h1, ["call", name, "--json"])) as unknown[];
      await within(3000, "every target hearing its publication", async () => {
        const [two, three, twoAgain] = [await heard("heard2"), await heard("heard3"), await heard("heardAgain")];
        return three.includes("x3") && two.includes("x2") && twoAgain.includes("x2") && twoAgain.includes("x1");
      });
      await sleep(300);
      expect((await heard("heard3")).filter((x) => x === "x2" || x === "x1")).toEqual([]);
      expect((await heard("heard2")).filter((x) => x === "x3" || x === "x1")).toEqual([]);
      expect((await heard("heardAgain")).filter((x) => x === "x3")).toEqual([]);
    } finally {
      again.kill("SIGTERM");
    }
  });

  test("values beyond JSON travel whole between hosts, through the routers too, or fail with their path", async () => {
    // host3's server is reachable through the routers only: the relayed frames keep every value.
    const values = await h3.serve(
      [
        h3.service("Values", {
          same: "return args;",
          kinds: "return args.map((x) => Object.prototype.toString.call(x));",
          published: { decorator: 'subscribe("values.#")', body: "this.heard.push(args);" },
          heardValues: "return this.heard;",
          refuse: 'throw Object.assign(new RangeError("too hot", { cause: new Error("sensor 4") }), { code: "E_HOT", details: { limit: 90n, at: new Date(3) } });',
        }),
      ],
      { LABC_SERVER_ADDRESS: "127.0.0.1" },
    );
    try {
      await within(8000, "host1 knowing the values service", async () => (await h1.cli(["call", "heardValues"])).code === 0);
      const result = await h1.script([
        'import { isDeepStrictEqual } from "node:util";',
        "const sent = [new Date(5), new Map([[\"a\", 1n], [{ k: 1 }, new Set([2])]]), new Set([1]), 2n ** 70n, new Float32Array([1.5, 2]),",
        "  new BigInt64Array([-3n]), [1, undefined], NaN, -0, Infinity, /x+/g, Object.assign(new Error(\"e\"), { details: { n: 1 } }), { when: new Date(0) }];",
        'const back = await labc.call("same", ...sent);',
        'const kinds = await labc.call("kinds", ...sent);',
        'await labc.publish("values.all", ...sent);',
        'const failure = await labc.call("refuse").catch((error) => error);',
        'const refused = await labc.call("same", { when: new Date(0), then: () => 1 }).catch((error) => `${error.code} ${error.message}`);',
        "let heard = [];",
        'for (let i = 0; i < 100 && heard.length === 0; i++) heard = await labc.call("heardValues"), await new Promise((done) => setTimeout(done, 50));',
        "console.log(JSON.stringify({",
        "  same: sent.map((x, i) => isDeepStrictEqual(back[i], x)), kinds, published: sent.map((x, i) => isDeepStrictEqual(heard[0]?.[i], x)),",
        "  failure: [failure.code, failure.remoteName, failure.remoteCode, failure.cause?.message, isDeepStrictEqual(failure.details, { limit: 90n, at: new Date(3) })],",
        "  refused,",
        "}));",
      ]);
      expect(result.stderr).toBe("");
      const seen = JSON.parse(result.stdout);
      expect(seen.same).toEqual(Array(13).fill(true));
      expect(seen.published).toEqual(Array(13).fill(true));
      expect(seen.kinds).toEqual([
        "[object Date]", "[object Map]", "[object Set]", "[object BigInt]", "[object Float32Array]", "[object BigInt64Array]",
        "[object Array]", "[object Number]", "[object Number]", "[object Number]", "[object RegExp]", "[object Error]", "[object Object]",
      ]);
      expect(seen.failure).toEqual(["LABC_REMOTE_ERROR", "RangeError", "E_HOT", "sensor 4", true]);
      expect(seen.refused).toBe("LABC_BAD_ARGUMENTS same: args[0].then: a function (then) cannot be sent");
    } finally {
      values.kill("SIGTERM");
    }
  });

  test("a queue group of 3 hosts shares 3,000 publications; a subscriber outside the group gets them all", async () => {
    const members = await Promise.all(
      lan.hosts.map((host) =>
        host.serve([
          host.service(`Worker${host.name}`, {
            work: { decorator: 'subscribe("jobs.resize", { group: "workers" })', body: "this.heard.push(args[0]);" },
            [`worked${host.name}`]: "return this.heard;",
          }),
        ]),
      ),
    );
    const watcher = await h2.serve([h2.service("JobWatcher", { watch: { decorator: 'subscribe("jobs.#")', body: "this.heard.push(args[0]);" }, watched: "return this.heard.length;" })]);
    try {
      await within(8000, "host1 knowing every member", async () => {
        const listed = await h1.cli(["ls"]);
        return (listed.stdout.match(/jobs\.resize #workers/g) ?? []).length === 3 && listed.stdout.includes("jobs.#");
      });
      const published = await h1.script([
        "let reached = 0;",
        'for (let i = 0; i < 3000; i++) reached += await labc.publish("jobs.resize", i);',
        "console.log(reached);",
      ], 60000);
      expect(published).toMatchObject({ code: 0, stderr: "", stdout: "6000\n" });
      const worked = async (host: LanHost) => JSON.parse(await out(h1, ["call", `worked${host.name}`, "--json"])) as number[];
      await within(10000, "every job done once", async () => (await Promise.all(lan.hosts.map(worked))).flat().length === 3000);
      const shares = await Promise.all(lan.hosts.map(worked));
      for (const share of shares) {
        expect(share.length).toBeGreaterThanOrEqual(700);
        expect(share.length).toBeLessThanOrEqual(1300);
      }
      expect(shares.flat().sort((a, b) => a - b)).toEqual([...Array(3000).keys()]);
      expect(await out(h1, ["call", "watched"])).toBe("3000");
    } finally {
      for (const member of [...members, watcher]) member.kill("SIGTERM");
    }
  });

  test("a stream of 100,000 items to a slow reader on another host, through the routers: in order, the producer never far ahead", async () => {
    // host3's server is reachable through the routers only: items, credit and the cancel are relayed.
    const feeds = await h3.serve(
      [
        h3.service("Feed", {
          feed: {
            decorator: "register()",
            body: [
              "const self = this; self.count = 0; self.peak = 0; const start = process.memoryUsage().heapUsed;",
              "return (async function* () { try { for (let i = 0; i < args[0]; i++) { self.count++;",
              "  if (i % 1000 === 0) self.peak = Math.max(self.peak, process.memoryUsage().heapUsed - start);",
              "  yield { i, at: new Date(i) }; } } finally { self.ended = (self.ended ?? 0) + 1; } })();",
            ].join("\n"),
          },
          made: "return { made: this.count ?? 0, peakMb: (this.peak ?? 0) / 1048576, ended: this.ended ?? 0 };",
        }),
      ],
      { LABC_SERVER_ADDRESS: "127.0.0.1" },
    );
    try {
      await within(8000, "host1 knowing the feed", async () => (await h1.cli(["call", "made"])).code === 0);
      const result = await h1.script([
        "const sleep = (ms) => new Promise((done) => setTimeout(done, ms));",
        "let read = 0; let ahead = 0; let ordered = true;",
        'for await (const item of labc.streamWith("feed", [100000], { window: 32 })) {',
        "  ordered &&= item.i === read && item.at.getTime() === read;",
        "  read++;",
        '  if (read % 5000 === 0) { ahead = Math.max(ahead, (await labc.call("made")).made - read); await sleep(20); }',
        "}",
        'const after = await labc.call("made");',
        'for await (const item of labc.streamWith("feed", [1000000], { window: 32 })) if (item.i === 1000) break;',
        "await sleep(500);",
        'const stopped = await labc.call("made");',
        "console.log(JSON.stringify({ read, ahead, ordered, peakMb: after.peakMb, endedAfterBreak: stopped.ended - after.ended, madeAfterBreak: stopped.made }));",
      ], 120000);
      expect(result.stderr).toBe("");
      const seen = JSON.parse(result.stdout);
      expect(seen).toMatchObject({ read: 100000, ordered: true, endedAfterBreak: 1 });
      // Credit of 32 items: what the producer made but the reader had not read yet.
      expect(seen.ahead).toBeLessThanOrEqual(33);
      expect(seen.peakMb).toBeLessThan(32);
      expect(seen.madeAfterBreak).toBeLessThanOrEqual(1001 + 33);
    } finally {
      feeds.kill("SIGTERM");
    }
  });
  test("a trace id crosses hosts with the call, through the routers too: hooks on host1 and host3 see one trace", async () => {
    const traced = join(PACKAGE_ROOT, "test", "fixtures", "traced.ts");
    await h1.serve([traced], { TRACED_AS: "t1" });
    // host3's server is on loopback: host1 reaches it through both routers.
    await h3.serve([traced], { TRACED_AS: "t3", LABC_SERVER_ADDRESS: "127.0.0.1" });
    await within(8000, "t1 and t3 known on host2", async () => (await out(h2, ["ls"])).includes("t3.double") && (await out(h2, ["ls"])).includes("t1.hop"));
    expect(await out(h2, ["call", "t1.hop", "t3.double", "21"])).toBe("42");
    const spans = async (fn: string) => JSON.parse((await h2.cli(["call", fn, "--json"])).stdout) as Record<string, any>[];
    const atT1 = await spans("t1.spans");
    const served = atT1.find((s) => s.side === "serving" && s.name === "t1.hop")!;
    const calling = atT1.find((s) => s.side === "calling" && s.name === "t3.double")!;
    expect(calling).toMatchObject({ traceId: served.traceId, parentSpanId: served.spanId });
    const atT3 = await spans("t3.spans");
    // Through the routers, the serving side does not know the caller's process: the trace still links them.
    const atHost3 = atT3.find((s) => s.name === "t3.double")!;
    expect(atHost3).toMatchObject({ traceId: served.traceId, parentSpanId: calling.spanId, args: [21] });
    expect(atHost3.callerPid).toBeUndefined();
  });
});
