import { expect, test } from "vitest";
import { DEFAULT_LIMITS } from "../../lib/wire/limits.js";
import { Connection } from "../../lib/net/connection.js";
import type { Transport } from "../../lib/net/transport.js";
import { Peers } from "../../lib/router/host-links.js";
import { FunctionPool } from "../../lib/pool/function-pool.js";
import { Kind, type ServerEntry } from "../../lib/wire/message.js";

/** A link that goes nowhere: what is written to it is dropped. */
function link(remote: string): Connection {
  const transport: Transport = {
    remote,
    queuedBytes: 0,
    write() {},
    close: async () => {},
    start() {},
    pause() {},
    resume() {},
    ref() {},
    unref() {},
  };
  return new Connection(transport, { label: remote, limits: DEFAULT_LIMITS });
}

const server = (id: string, functions: string[], topics: string[] = []): ServerEntry => ({
  id,
  host: "h2",
  hostId: "id-h2",
  address: "10.0.0.2",
  port: 4000,
  pid: 1,
  functions: functions.map((name) => ({ name, scope: "network", visibility: "public" })),
  topics,
});

test("a host's pool sent again on a new link tells this host's processes only what changed, never a death of a server still there", () => {
  const told: [Kind, any][] = [];
  const pool = new FunctionPool();
  const peers = new Peers({
    self: { hostId: "id-h1", name: "h1", port: 55555, instance: "i1" },
    settleMs: 0,
    ready: () => true,
    limits: DEFAULT_LIMITS,
    pool,
    heartbeat: { intervalMs: 60_000, suspectAfter: 2, deadAfter: 4 },
    dial: () => Promise.reject(new Error("no dialing here")),
    notify: (kind, body) => told.push([kind, body]),
    exported: () => [],
    deliverLocal: () => {},
    remember: () => {},
  });
  const hello = { v: 1, role: "router" as const, id: "i2", pid: 2, host: "h2", hostId: "id-h2", port: 55555 };
  const first = link("10.0.0.2:50001");
  peers.accept(first, hello);
  peers.handle({ kind: Kind.pool, id: 0, body: { servers: [server("a", ["echo", "add"], ["lab.#"]), server("b", ["x"])] } }, first);
  expect(pool.servers.size).toBe(2);
  told.length = 0;
  // A new link to that host (its router restarted; or both dialed at once and the other link
  // won): "a" lost "add" and its topic, "b" is gone.
  const second = link("10.0.0.2:50002");
  peers.accept(second, { ...hello, id: "i3" });
  peers.handle({ kind: Kind.pool, id: 0, body: { servers: [server("a", ["echo"])] } }, second);
  expect(told.filter(([kind]) => kind === Kind.death)).toEqual([[Kind.death, { server: "b" }]]);
  expect(told).toContainEqual([Kind.withdraw, { server: "a", functions: ["add"], topics: ["lab.#"] }]);
  expect([...pool.servers.keys()]).toEqual(["a"]);
  expect([...pool.servers.get("a")!.functions.keys()]).toEqual(["echo"]);
  expect(pool.subscribers("lab.x")).toEqual([]);
  peers.close();
});
