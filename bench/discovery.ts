/**
 * Discovery figure: with 4 hosts running (network namespaces, see test/netns/lan.ts), the time
 * from the start of `labc serve` on a 5th host until every other host can call its function.
 * Needs root and iproute2; says why and skips otherwise.
 */
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Lan, lanUnavailable, type LanHost } from "../test/netns/lan.js";

const ROUNDS = process.argv.includes("--quick") ? 1 : 3;

/** The lines a probe prints, in order, and a way to wait for the next one. */
function lines(host: LanHost, child: ReturnType<LanHost["spawn"]>): () => Promise<string> {
  const queue: string[] = [];
  let wake: (() => void) | null = null;
  createInterface({ input: child.stdout! }).on("line", (line) => {
    queue.push(line);
    wake?.();
  });
  return async () => {
    const end = Date.now() + 20000;
    while (queue.length === 0) {
      if (Date.now() > end) throw new Error(`${host.name}: no answer in 20 s`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return queue.shift()!;
  };
}

async function round(): Promise<number[]> {
  const lan = Lan.create(5);
  try {
    const hosts = lan.hosts;
    const newcomer = hosts[4]!;
    const others = hosts.slice(0, 4);
    await Promise.all(others.map((host) => host.serve([host.service(`S${host.name}`, { [`on_${host.name}`]: "return 1;" })])));
    const file = newcomer.service("Newcomer", { newcomer: "return 1;" });
    // Each probe is a process of its own, already linked to its router, calling in a loop.
    const since = Date.now() + 1500;
    const probe = fileURLToPath(new URL("./discovery-probe.js", import.meta.url));
    const probes = others.map((host) => {
      const child = host.spawn([probe, "newcomer", String(since), "15000"]);
      child.stderr!.on("data", (chunk) => process.stderr.write(`${host.name} probe: ${chunk}`));
      return lines(host, child);
    });
    await Promise.all(probes.map((next) => next()));
    await new Promise((done) => setTimeout(done, Math.max(0, since - Date.now())));
    // Its own readiness is not waited for: the figure counts from its start.
    newcomer.serve([file]).catch((error) => console.error(String(error)));
    return await Promise.all(probes.map(async (next) => Number(await next())));
  } finally {
    lan.cleanup();
  }
}

const why = lanUnavailable();
if (why) {
  console.log(`discovery figure skipped: ${why}`);
} else {
  const figures: number[] = [];
  for (let i = 0; i < ROUNDS; i++) figures.push(Math.max(...(await round())));
  figures.sort((a, b) => a - b);
  console.log(
    `discovery, 5 hosts: a new host's function callable from all 4 others ${figures[Math.floor(figures.length / 2)]} ms` +
      ` after its \`labc serve\` started (median of ${ROUNDS}; all: ${figures.join(", ")} ms)`,
  );
}
