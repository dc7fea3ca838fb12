import { describe, expect, test } from "vitest";
import { ConnectionLostError, ItemLostError } from "../../lib/errors.js";
import { FunctionPool, type PoolServer } from "../../lib/pool/function-pool.js";
import { JobMap, type MapTransport } from "../../lib/runtime/job-map.js";

/**
 * A job over servers `a` and `b` of a real pool, whose calls wait until the test settles them:
 * the order in which a server's death and its calls' failures arrive is the test's to choose.
 */
function job(idempotent: boolean) {
  const pool = new FunctionPool();
  for (const id of ["a", "b"]) {
    const server = pool.addServer({ id, host: id, hostId: id, address: "127.0.0.1", port: 1, pid: 1 });
    pool.announce(server, [{ name: "work", scope: "network", visibility: "public", ...(idempotent ? { idempotent: true } : {}) }]);
  }
  const calls: { server: PoolServer; item: unknown; answer: (value: unknown) => void; fail: (error: unknown) => void }[] = [];
  const transport: MapTransport = {
    servers: () => pool.candidates("work", "network", { hostId: "x" }),
    missing: () => new Error("no server") as never,
    call: (server, item) => new Promise((answer, fail) => calls.push({ server, item, answer, fail })),
    // As lib/runtime/fan-out.ts asks it: of the pool's entry, which a death notice empties.
    idempotent: (server) => server.functions.get("work")?.idempotent === true,
    sent: () => true,
  };
  const map = new JobMap<number>("work", [1, 2], { perServer: 1 }, transport, Promise.resolve());
  return { pool, calls, map };
}

const turn = () => new Promise((done) => setImmediate(done));

describe("JobMap, a server lost with items on it", () => {
  // The death notice can come before the connection's close (the router's link was read first):
  // the pool has then withdrawn the server's functions when its calls fail.
  test("idempotent: its item goes to another server, even when the pool dropped the server first", async () => {
    const { pool, calls, map } = job(true);
    await turn();
    expect(calls.map((call) => call.server.id).sort()).toEqual(["a", "b"]);
    const onA = calls.find((call) => call.server.id === "a")!;
    const onB = calls.find((call) => call.server.id === "b")!;
    pool.removeServer("a");
    onA.fail(new ConnectionLostError("server a", "work"));
    onB.answer(Number(onB.item) * 2);
    await turn();
    expect(calls).toHaveLength(3);
    expect(calls[2]).toMatchObject({ item: onA.item, server: { id: "b" } });
    calls[2]!.answer(Number(onA.item) * 2);
    expect(await map).toEqual([2, 4]);
    const outcomes = [];
    for await (const outcome of map) outcomes.push(outcome);
    expect(outcomes.find((o) => o.item === onA.item)).toMatchObject({ ok: true, attempts: 2, server: "b pid 1" });
  });

  test.each(["the death notice", "the connection's close"])("not idempotent: its item fails with ItemLostError when %s comes first", async (first) => {
    const { pool, calls, map } = job(false);
    await turn();
    const onA = calls.find((call) => call.server.id === "a")!;
    const onB = calls.find((call) => call.server.id === "b")!;
    if (first === "the death notice") pool.removeServer("a");
    onA.fail(new ConnectionLostError("server a", "work"));
    await turn(); // the job has read the failure
    pool.removeServer("a");
    onB.answer(Number(onB.item) * 2);
    const error = await map.then(() => undefined, (e) => e);
    expect(calls).toHaveLength(2);
    const lost = error.results.find((r: { item: unknown }) => r.item === onA.item);
    expect(lost).toMatchObject({ ok: false, attempts: 1, server: "a pid 1" });
    expect(lost.error).toBeInstanceOf(ItemLostError);
  });

  test("a server lost stays lost when the pool's objects are made again (the caller joined its router again)", async () => {
    const { pool, calls, map } = job(true);
    await turn();
    const onA = calls.find((call) => call.server.id === "a")!;
    const onB = calls.find((call) => call.server.id === "b")!;
    onA.fail(new ConnectionLostError("server a", "work"));
    await turn();
    // The router still lists `a` (its death not noticed yet), in new objects.
    pool.replaceWith(pool.snapshot());
    onB.answer(Number(onB.item) * 2);
    await turn();
    expect(calls.slice(2).map((call) => [call.item, call.server.id])).toEqual([[onA.item, "b"]]);
    calls[2]!.answer(Number(onA.item) * 2);
    expect(await map).toEqual([2, 4]);
  });
});
