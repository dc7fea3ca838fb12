import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { Lan, lanUnavailable, within, type LanHost } from "./lan.js";

const why = lanUnavailable();

let lan: Lan;
let hosts: [LanHost, LanHost, LanHost];

/** A worker that logs each item to a file before answering: the log survives a SIGKILL. */
const worker = (host: LanHost) =>
  host.service(`Worker${host.name}`, {
    work: { decorator: "register({ idempotent: true })", body: body(host, "work") },
    workOnce: { decorator: "register()", body: body(host, "workOnce") },
  });

function body(host: LanHost, fn: string): string {
  const log = JSON.stringify(join(host.dir, `${fn}.log`));
  return `return new Promise((done) => setTimeout(done, 15)).then(() => { process.getBuiltinModule("node:fs").appendFileSync(${log}, args[0] + "\\n"); return args[0] * 2; });`;
}

/** How many times each item was done, over every host's log. */
function doneCounts(fn: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const host of hosts) {
    let text = "";
    try {
      text = readFileSync(join(host.dir, `${fn}.log`), "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").filter(Boolean)) counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
  }
  return counts;
}

/**
 * Runs `labc.map(fn, 0..999)` from host1, and SIGKILLs `victim` once 300 items are done.
 * Resolves with every item's outcome as the script saw it.
 */
async function mapWithAKill(fn: string, victim: { kill: (signal: NodeJS.Signals) => boolean }): Promise<{ index: number; ok: boolean; value?: number; code?: string; message?: string; attempts: number }[]> {
  const [h1] = hosts;
  const file = join(h1.dir, `map-${fn}.mjs`);
  const labc = pathToFileURL(join(PACKAGE_ROOT, "dist", "labc.js")).href;
  writeFileSync(file, [
    `import * as labc from ${JSON.stringify(labc)};`,
    `const job = labc.map(${JSON.stringify(fn)}, Array.from({ length: 1000 }, (_, i) => i), { perServer: 2 });`,
    "const outcomes = [];",
    "for await (const r of job) {",
    "  outcomes.push({ index: r.index, ok: r.ok, value: r.value, code: r.error?.code, message: r.error?.message, attempts: r.attempts });",
    '  if (outcomes.length === 300) console.log("HALF");',
    "}",
    "await job.catch(() => {});",
    "console.log(JSON.stringify(outcomes));",
    "await labc.close();",
  ].join("\n"));
  const child = h1.spawn([file]);
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`map of ${fn} did not end in 60 s: ${stderr}`)), 60000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line === "HALF") victim.kill("SIGKILL");
      else lines.push(line);
    });
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  expect(stderr).toBe("");
  return JSON.parse(lines.at(-1)!);
}

describe.skipIf(why)("labc.map over 3 namespace hosts, a worker host killed halfway", () => {
  const workers: { kill: (signal: NodeJS.Signals) => boolean }[] = [];

  beforeAll(async () => {
    lan = Lan.create(3);
    hosts = lan.hosts as [LanHost, LanHost, LanHost];
    workers.push(...(await Promise.all(hosts.map((host) => host.serve([worker(host)])))));
    await within(10000, "host1 knowing the three workers", async () => {
      const listed = await hosts[0].cli(["call", "--all", "work", "--json", "--", "-1"]);
      return listed.code === 0 && JSON.parse(listed.stdout).length === 3;
    });
  }, 60000);
  afterAll(() => lan?.cleanup());

  test("idempotent: the items of the lost host go to the others; every item is done, in order", async () => {
    const outcomes = await mapWithAKill("work", workers[2]!);
    expect(outcomes).toHaveLength(1000);
    expect(new Set(outcomes.map((o) => o.index)).size).toBe(1000);
    // Named in the message: a run's summary shows only its first lines.
    const failed = outcomes.filter((o) => !o.ok).map((o) => `item ${o.index} after ${o.attempts} attempt(s): ${o.code} ${o.message}`);
    expect(failed, failed.join("; ")).toEqual([]);
    for (const o of outcomes) expect(o.value).toBe(o.index * 2);
    const counts = doneCounts("work");
    // Done once, or (sent again after its host was lost, as its attempts say) at most twice.
    for (const o of outcomes) expect(counts.get(o.index) ?? 0).toBeLessThanOrEqual(o.attempts);
    expect(outcomes.some((o) => o.attempts > 1) || [...counts.values()].every((n) => n === 1)).toBe(true);
    // host3 did its share until it was killed, and nothing after.
    const third = readFileSync(join(hosts[2].dir, "work.log"), "utf8").split("\n").filter(Boolean).length;
    expect(third).toBeGreaterThan(30);
    expect(third).toBeLessThan(700);
  });

  test("not idempotent: the items in flight on the lost host fail with LABC_ITEM_LOST, none is done twice", async () => {
    const outcomes = await mapWithAKill("workOnce", workers[1]!);
    expect(outcomes).toHaveLength(1000);
    expect(new Set(outcomes.map((o) => o.index)).size).toBe(1000);
    const failed = outcomes.filter((o) => !o.ok);
    // At most the calls in flight on host2 when it died (2 per server).
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThanOrEqual(2);
    expect(failed.map((o) => o.code)).toEqual(failed.map(() => "LABC_ITEM_LOST"));
    const counts = doneCounts("workOnce");
    // (An item sent again had not reached its server: the dial or the router refused it.)
    for (const o of outcomes) {
      if (o.ok) expect(counts.get(o.index)).toBe(1);
      else expect(counts.get(o.index) ?? 0).toBeLessThanOrEqual(1);
    }
  });
});
