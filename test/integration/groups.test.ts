import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BadArgumentsError } from "../../lib/errors.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { TestHost, eventually, sleep } from "../helpers.js";

let host: TestHost;
beforeAll(async () => {
  host = await TestHost.start();
});
afterAll(() => host.cleanup());

/** A runtime whose subscriber counts what it gets, in a queue group or not. */
async function counter(topic: string, group?: string): Promise<{ runtime: Runtime; got: unknown[]; stop: () => Promise<void> }> {
  const runtime = host.runtime();
  const got: unknown[] = [];
  const stop = await runtime.subscribe((value: unknown) => void got.push(value), topic, group === undefined ? {} : { group });
  return { runtime, got, stop };
}

describe("queue groups", () => {
  test("each publication goes to one member of each group; subscribers outside groups get every one", async () => {
    const workers = await Promise.all([counter("jobs.resize", "workers"), counter("jobs.*", "workers"), counter("jobs.#", "workers")]);
    const audit = await counter("jobs.resize", "audit");
    const plain = await counter("jobs.resize");
    const publisher = host.runtime();
    // The publisher's pool sees every member before the first publication.
    await eventually(async () => {
      await publisher.link.sync();
      return publisher.link.pool.groupMembers("jobs.resize").length === 4;
    });
    for (let i = 0; i < 300; i++) expect(await publisher.publish("jobs.resize", i)).toBe(3);
    await eventually(() => workers.reduce((sum, w) => sum + w.got.length, 0) === 300 && audit.got.length === 300 && plain.got.length === 300);
    await sleep(200);
    // The members take turns: an equal share each, every item exactly once.
    expect(workers.map((w) => w.got.length)).toEqual([100, 100, 100]);
    expect(workers.flatMap((w) => w.got).sort((a, b) => (a as number) - (b as number))).toEqual([...Array(300).keys()]);
    expect(plain.got).toEqual([...Array(300).keys()]);

    // A member that leaves gets nothing more; the others share what follows.
    await workers[0]!.stop();
    await publisher.link.sync();
    for (let i = 0; i < 100; i++) await publisher.publish("jobs.resize", 1000 + i);
    await eventually(() => workers[1]!.got.length + workers[2]!.got.length === 300);
    expect(workers[0]!.got).toHaveLength(100);
    expect([workers[1]!.got.length, workers[2]!.got.length]).toEqual([150, 150]);
    for (const subscriber of [...workers, audit, plain]) await subscriber.runtime.close();
  });

  test("a publisher in the group takes its turn too; several subscribers of one process share its turns", async () => {
    const publisher = host.runtime();
    const mine: unknown[] = [];
    await publisher.subscribe((value: unknown) => void mine.push(value), "lab.scan", { group: "scanners" });
    const other = host.runtime();
    const first: unknown[] = [];
    const second: unknown[] = [];
    await other.subscribe((value: unknown) => void first.push(value), "lab.scan", { group: "scanners" });
    await other.subscribe((value: unknown) => void second.push(value), "lab.*", { group: "scanners" });
    await eventually(async () => {
      await publisher.link.sync();
      return publisher.link.pool.groupMembers("lab.scan").length === 3;
    });
    for (let i = 0; i < 40; i++) await publisher.publish("lab.scan", i);
    await eventually(() => mine.length + first.length + second.length === 40);
    expect(mine).toHaveLength(20);
    expect([first.length, second.length]).toEqual([10, 10]);
    await publisher.close();
    await other.close();
  });

  test("a bad group name is refused, naming the group", async () => {
    const runtime = host.runtime();
    await expect(runtime.subscribe(() => {}, "jobs.x", { group: "two words" })).rejects.toThrow(BadArgumentsError);
    await expect(runtime.subscribe(() => {}, "jobs.x", { group: "" })).rejects.toThrow(/queue group ""/);
    await runtime.close();
  });
});
