import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CancelledError, TimeoutError } from "../../lib/errors.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { ECHO, FIXTURES, TestHost, eventually, sleep, type Served } from "../helpers.js";

const LAB = join(FIXTURES, "lab.ts");

let host: TestHost;
let labc: Runtime;

beforeAll(async () => {
  host = await TestHost.start();
  labc = host.runtime();
});
afterAll(() => host.cleanup());

/** Calls `echo` from `callers` loops until `stop()`; counts answers and failures. */
function callers(runtime: Runtime, count: number) {
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const loops = Array.from({ length: count }, async (_, i) => {
    for (let n = 0; running && n < 1_000_000; n++) {
      try {
        const answer = await runtime.callWith<any>("echo", [`${i}.${n}`], { timeoutMs: 5000 });
        if (answer === `${i}.${n}`) ok++;
        else failures.push(`wrong answer ${answer}`);
      } catch (error) {
        failures.push(`${(error as { code?: string }).code}: ${(error as Error).message} ${String((error as Error).cause ?? "")}`);
      }
    }
  });
  return {
    get ok() {
      return ok;
    },
    failures,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe("stops lose nothing", () => {
  test("repeated graceful stops of one of two servers, under 50 callers, fail no call", async () => {
    const steady = await host.serve([ECHO]);
    let other = await host.serve([ECHO]);
    const load = callers(labc, 50);
    try {
      for (let round = 0; round < 3; round++) {
        await eventually(() => load.ok > (round + 1) * 500, 10000, "calls flowing");
        other.child.kill("SIGTERM");
        expect(await other.exited).toBe(0);
        other = await host.serve([ECHO]);
      }
      await eventually(() => load.ok > 2500, 10000, "calls flowing after the stops");
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    expect(steady.stderr()).not.toMatch(/unfinished/);
    steady.child.kill("SIGKILL");
    other.child.kill("SIGKILL");
  });

  test("labc.close() in a process that serves: callers elsewhere see nothing fail", async () => {
    const steady = await host.serve([ECHO]);
    const load = callers(labc, 20);
    try {
      for (let round = 0; round < 3; round++) {
        const leaving = host.runtime();
        await leaving.register((text: string) => text, { name: "echo" });
        await eventually(() => load.ok > (round + 1) * 300, 10000, "calls flowing");
        await sleep(100);
        await leaving.close();
      }
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    steady.child.kill("SIGKILL");
  });

  test("a script that publishes and exits right after `await labc.close()` delivers every publication", async () => {
    const got = host.runtime();
    let count = 0;
    let last = -1;
    let inOrder = true;
    await got.subscribe((n: number) => {
      if (n !== last + 1) inOrder = false;
      last = n;
      count++;
    }, "flood");
    const script = join(host.dir, "flood.mjs");
    writeFileSync(
      script,
      [
        `import * as labc from ${JSON.stringify(new URL("../../dist/labc.js", import.meta.url).href)};`,
        "for (let batch = 0; batch < 200; batch++) {",
        "  const sent = [];",
        "  for (let i = 0; i < 1000; i++) sent.push(labc.publish('flood', batch * 1000 + i));",
        "  await Promise.all(sent);",
        "}",
        "await labc.close();",
        "process.exit(0);",
      ].join("\n"),
    );
    const result = await host.node([script]);
    expect(result.code).toBe(0);
    await eventually(() => count === 200_000, 10000, `200000 publications (got ${count})`);
    expect(inOrder).toBe(true);
  });
});

describe("frozen servers are skipped", () => {
  test("a stopped server turns suspect within about a second, calls avoid it, and it returns when resumed", async () => {
    const frozen = await host.serve([LAB]);
    const well = await host.serve([LAB]);
    try {
      const pids = async () => Promise.all(Array.from({ length: 20 }, () => labc.call<any>("pid")));
      expect(new Set(await pids()).size).toBe(2);
      // When it fails is taken as it fails: the checks below take their own time on a loaded machine.
      let failedAt = 0;
      const inFlight = labc
        .callWith<any>("slowEcho", [300, "late"], { port: frozen.port, host: labc.identity.host, timeoutMs: 1500 })
        .catch((error) => ((failedAt = Date.now()), error));
      await sleep(50);
      process.kill(frozen.pid, "SIGSTOP");
      const stoppedAt = Date.now();
      await eventually(async () => /"suspect":\s*true/.test((await host.cli(["ls", "--json"])).stdout), 3000, "suspect in labc ls");
      const seenAfter = Date.now() - stoppedAt;
      expect(seenAfter).toBeLessThan(2500);
      const listing = (await host.cli(["ls"])).stdout;
      expect(listing).toMatch(new RegExp(`slowEcho .* ${frozen.pid} .* suspect`));
      // Every unpinned call goes to the server that answers, at once.
      const started = Date.now();
      expect(new Set(await pids())).toEqual(new Set([well.pid]));
      expect(Date.now() - started).toBeLessThan(1000);
      // The call sent before the freeze fails at its own deadline (1 450 ms after the SIGSTOP), not later.
      expect(await inFlight).toBeInstanceOf(TimeoutError);
      expect(failedAt - stoppedAt).toBeLessThan(2000);
      process.kill(frozen.pid, "SIGCONT");
      await eventually(async () => !/"suspect":\s*true/.test((await host.cli(["ls", "--json"])).stdout), 3000, "well again");
      await eventually(async () => new Set(await pids()).size === 2, 3000, "both answer again");
    } finally {
      // Even when a check failed: the tests below count calls to the one server they start.
      frozen.child.kill("SIGKILL");
      well.child.kill("SIGKILL");
      await Promise.all([frozen.exited, well.exited]);
    }
  });
});

describe("cancellation and the call context", () => {
  let lab: Served;
  beforeAll(async () => {
    lab = await host.serve([LAB]);
  });

  test("an AbortSignal cancels the call here and on the server; the handler sees it", async () => {
    const abort = new AbortController();
    const call = labc.callWith<any>("patient", [10_000], { signal: abort.signal });
    await sleep(200);
    const started = Date.now();
    abort.abort();
    const error = await call.catch((e) => e);
    expect(error).toBeInstanceOf(CancelledError);
    expect(error.code).toBe("LABC_CANCELLED");
    expect(Date.now() - started).toBeLessThan(100);
    await eventually(async () => (await labc.call<any>("cancelled")).length === 1, 2000, "the server saw the cancel");
    expect((await labc.call<any>("cancelled"))[0]).toMatchObject({ fn: "patient", why: "LABC_CANCELLED" });
    // Aborted before it is sent: nothing goes out.
    await expect(labc.callWith<any>("patient", [10], { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CancelledError);
  });

  test("a timeout cancels the call on the server too", async () => {
    const before = (await labc.call<any>("cancelled")).length;
    await expect(labc.callWith<any>("patient", [10_000], { timeoutMs: 200 })).rejects.toBeInstanceOf(TimeoutError);
    await eventually(async () => (await labc.call<any>("cancelled")).length === before + 1, 2000, "the server saw the timeout");
  });

  test("the handler knows its caller, its deadline and its name", async () => {
    const sent = Date.now();
    const seen = await labc.callWith<any>("whoCalls", [], { timeoutMs: 5000 });
    expect(seen.functionName).toBe("whoCalls");
    expect(seen.caller).toEqual({ id: labc.identity.id, host: labc.identity.host, hostId: labc.identity.hostId, pid: process.pid });
    expect(seen.deadline).toBeGreaterThanOrEqual(sent + 4900);
    expect(seen.deadline).toBeLessThanOrEqual(Date.now() + 5000);
  });

  test("Ctrl-C on `labc call` cancels the remote call", async () => {
    const before = (await labc.call<any>("cancelled")).length;
    const child = host.spawn(["call", "patient", "10000"]);
    let stderr = "";
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((done) => child.once("exit", done));
    await eventually(async () => (await host.cli(["ls"])).code === 0, 5000);
    await sleep(700);
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/call to "patient" was cancelled: interrupted \(Ctrl-C\) \[LABC_CANCELLED\]/);
    await eventually(async () => (await labc.call<any>("cancelled")).length === before + 1, 2000, "the server saw the Ctrl-C");
  });

  afterAll(() => {
    lab.child.kill("SIGKILL");
  });
});

describe("concurrent starts", () => {
  test("six `labc serve` of one new service file at once all serve", async () => {
    const file = join(host.dir, "Fresh.ts");
    writeFileSync(file, 'import { register } from "labc";\nexport class Fresh {\n  @register() fresh() { return process.pid; }\n}\n');
    const started = await Promise.all(Array.from({ length: 6 }, () => host.serve([file])));
    const answers = await labc.callAll("fresh", []);
    expect(new Set(answers.map((answer) => answer.value))).toEqual(new Set(started.map((served) => served.pid)));
    for (const served of started) served.child.kill("SIGKILL");
  });
});
