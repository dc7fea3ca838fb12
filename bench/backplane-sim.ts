/**
 * Gateways for the backplane's scale simulation (bench/backplane-scale.ts): `count` Backplanes
 * in this process, each a site of its own with one server of `functions` functions, each with
 * its own NATS connection and pool, no router around them. Prints one JSON line once every one
 * of them knows every function of every other site (or after 120 s), and stays (other
 * processes may still be learning its sites) until its parent ends it. Argv: NATS address,
 * first site number, count, total sites, functions per site, heartbeat ms.
 */
import { randomBytes } from "node:crypto";
import { Backplane } from "../lib/backplane/nats-backplane.js";
import { DEFAULT_LIMITS } from "../lib/wire/limits.js";
import { FunctionPool } from "../lib/pool/function-pool.js";
import type { ServerEntry } from "../lib/wire/message.js";

const [nats, firstText, countText, totalText, functionsText, heartbeatText] = process.argv.slice(2);
const [first, count, total, functions, heartbeatMs] = [firstText, countText, totalText, functionsText, heartbeatText].map(Number) as [number, number, number, number, number];
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

function entry(site: number): ServerEntry {
  return {
    id: `server-${site}`,
    host: `sim${site}`,
    hostId: `sim-${site}`,
    address: "10.0.0.1",
    port: 40000,
    pid: 1000 + site,
    functions: Array.from({ length: functions }, (_, f) => ({ name: `sim${site}.fn${f}`, scope: "network" as const, visibility: "public" as const })),
    topics: [`sim.${site}.#`],
  };
}

gc();
const heapAtStart = process.memoryUsage().heapUsed;
const gateways = Array.from({ length: count }, (_, k) => {
  const site = first + k;
  const pool = new FunctionPool();
  const mine = entry(site);
  const backplane = new Backplane({
    settings: { servers: [nats!], realm: "sim", heartbeatMs, relinkMs: 10_000 },
    self: { hostId: `sim-${site}`, name: `sim${site}`, instance: randomBytes(4).toString("hex") },
    limits: DEFAULT_LIMITS,
    pool,
    lanHost: (hostId) => hostId === mine.hostId,
    site: () => ({ servers: [mine], hosts: [{ hostId: mine.hostId, name: mine.host }] }),
    tell: () => {},
    deliver: () => {},
    deliverPublication: () => {},
  });
  return { pool, backplane, convergedAt: 0 };
});
const startedAt = Date.now();
await Promise.all(gateways.map(({ backplane }) => backplane.start()));
const connectedAt = Date.now();

const expected = (total - 1) * functions;
const known = (pool: FunctionPool) => {
  let n = 0;
  for (const server of pool.servers.values()) n += server.functions.size;
  return n;
};
const deadline = Date.now() + 120_000;
while (Date.now() < deadline) {
  for (const gateway of gateways) if (!gateway.convergedAt && known(gateway.pool) >= expected) gateway.convergedAt = Date.now();
  if (gateways.every((gateway) => gateway.convergedAt)) break;
  await new Promise((done) => setTimeout(done, 100));
}
const cpu = process.cpuUsage();
gc();
const heapConverged = process.memoryUsage().heapUsed;
const knownFunctions = gateways.reduce((sum, gateway) => sum + known(gateway.pool), 0);
// What the pools hold: the difference once they are emptied (copies, so that the originals
// stay as they were while other processes are still learning).
const saved = gateways.map(({ pool }) => pool.snapshot());
for (const { pool } of gateways) pool.clear();
gc();
const heapEmptied = process.memoryUsage().heapUsed;
gateways.forEach(({ pool }, k) => pool.replaceWith(saved[k]!));
const converged = gateways.filter((gateway) => gateway.convergedAt);
process.stdout.write(
  `${JSON.stringify({
    startedAt,
    connectedAt,
    convergedAt: converged.length === count ? Math.max(...converged.map((g) => g.convergedAt)) : null,
    converged: converged.length,
    knownFunctions,
    poolBytes: heapConverged - heapEmptied,
    heapPerGateway: (heapConverged - heapAtStart) / count,
    rssMb: process.memoryUsage.rss() / 2 ** 20,
    cpuMs: (cpu.user + cpu.system) / 1000,
  })}\n`,
);
// Gone only when the parent ends it (SIGKILL), as hosts that stay up.
setInterval(() => {}, 60_000);
