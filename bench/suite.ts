/**
 * `npm run bench`: what only labc has (calls through the router, reqpub, streams, job maps, the
 * network secret's cost, metrics and hooks), and the figures the shared peer harness does not
 * take (publications to 10 subscribers, binary and 1 MiB values, starts and memory) against a raw
 * Node `net` baseline and its peers (Moleculer, NATS), all measured in this one run. W1-W3 from
 * one process to one other against raw, the envelope RPC, Moleculer, ZeroMQ and NATS are the
 * harness's (`npm run bench:peers`, the benchmark of record): here labc's own, as a reference for
 * the W7-W13 ratios. Clients run in this process, servers and subscribers in processes of their
 * own, everything on 127.0.0.1. `--quick` runs each figure briefly, once; `--only raw,labc`
 * measures only the systems named.
 * Peers are installed by `npm run bench:setup`; a peer that is missing is skipped with a note.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../lib/config.js";
import { freePort } from "../lib/net/free-port.js";
import { CLI_PATH, PACKAGE_ROOT } from "../lib/paths.js";
import { newSecret } from "../lib/trust/secret.js";
import { Runtime } from "../lib/runtime/runtime.js";
import { benchHost, concurrent, cpuMicros, interleaved, median, sequential, sleep, startProcess, warm, type Call, type Figure, type Latencies } from "./measure.js";
import { rawFrame, rawFrames, rawReader, writeBinaryFrame } from "./raw-protocol.js";

const quick = process.argv.includes("--quick");
const onlyAt = process.argv.indexOf("--only");
const only = onlyAt > 0 ? new Set(process.argv[onlyAt + 1]?.split(",")) : undefined;
const ROUND_MS = quick ? 150 : 1000;
const ROUNDS = quick ? 1 : 5;
/**
 * W2's rounds: the machine's slow spells last seconds, so rounds of 1 s alternating put a spell
 * on one system; rounds of 200 ms spread it over all (W1 takes its calls in turn likewise).
 */
const W2_ROUND_MS = quick ? 150 : 200;
const W2_ROUNDS = quick ? 1 : 25;
/** W4's rounds: a call takes milliseconds, so a round holds few of them and varies more. */
const W4_ROUNDS = quick ? 1 : 15;
/** Publications in the first, sizing run of a pub/sub figure; later rounds last about ROUND_MS. */
const PROBE_PUBLICATIONS = quick ? 2000 : 20_000;
const MAX_PUBLICATIONS = 3_000_000;
const SUBSCRIBERS = quick ? 3 : 10;
const SMALL = "hello";
const PEERS = join(PACKAGE_ROOT, "bench", "peers");
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** "labc-secret" is labc with a network secret: every link over TLS (docs/security.md). */
type System = "raw" | "labc" | "labc-secret" | "moleculer" | "nats";
type LabcKind = "labc" | "labc-secret";
interface Row {
  figure: string;
  unit: string;
  better: "higher" | "lower";
  values: Partial<Record<System, Figure>>;
}
const rows: Row[] = [];
const notes: string[] = [];

function record(figure: string, unit: string, better: Row["better"], system: System, value: Figure): void {
  let row = rows.find((r) => r.figure === figure);
  if (!row) rows.push((row = { figure, unit, better, values: {} }));
  row.values[system] = value;
}

// ---- processes (all ended by PID at the end) ----

const children: ChildProcess[] = [];
const extraPids: number[] = [];
/** What else ends with the run (runtimes made outside a system). */
const closing: (() => Promise<void>)[] = [];

/** Starts a process; resolves with its first line of output and how long that took. */
function start(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; line: string; ms: number }> {
  return startProcess(children, command, args, env);
}

function stop(child: ChildProcess): void {
  child.kill("SIGKILL");
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

// ---- the raw baseline's client ----

/**
 * Writes a frame so that every frame written in one tick leaves in one write (corked until the
 * tick ends), as a careful raw client does.
 */
function tickWriter(socket: net.Socket): (frame: Buffer) => void {
  const uncork = () => socket.uncork();
  return (frame) => {
    if (!socket.writableCorked) {
      socket.cork();
      process.nextTick(uncork);
    }
    socket.write(frame);
  };
}

/** A connection to a raw server: requests matched to answers by id, frames split by `split`. */
function rawConnection<T>(port: number, split: (onFrame: (id: number, body: any) => void) => (chunk: Buffer) => void) {
  const socket = net.connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  const send = tickWriter(socket);
  const pending = new Map<number, (value: T) => void>();
  let nextId = 1;
  socket.on(
    "data",
    split((id, body) => {
      pending.get(id)?.(body);
      pending.delete(id);
    }),
  );
  return {
    socket,
    send,
    ready: new Promise((resolve) => socket.once("connect", resolve)),
    /** Sends what `write` writes under a fresh id; resolves with the answer's body. */
    request: (write: (id: number) => void) =>
      new Promise<T>((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        write(id);
      }),
    close: () => socket.destroy(),
  };
}

/** Publications a raw publisher writes corked before it hands them over and checks for `drain`. */
const RAW_BATCH = 1000;

function rawClient(port: number) {
  const { socket, send, ready, request, close } = rawConnection<any>(port, rawReader);
  const ask = (body: unknown) => request((id) => send(rawFrame(id, body))).then((answer) => answer.v);
  let batched = 0;
  const flush = () => {
    batched = 0;
    while (socket.writableCorked) socket.uncork();
  };
  return {
    ready,
    close,
    call: (value: unknown) => ask({ args: [value] }),
    // Each message encoded once, written corked in batches of RAW_BATCH; a full socket buffer
    // makes the publisher wait for `drain` instead of buffering without bound.
    publish: (value: unknown): Promise<void> | undefined => {
      if (!socket.writableCorked) {
        socket.cork();
        process.nextTick(flush);
      }
      socket.write(rawFrame(0, { topic: "bench.tick", args: [value] }));
      if (++batched < RAW_BATCH) return undefined;
      flush();
      return socket.writableNeedDrain ? new Promise((done) => socket.once("drain", done)) : undefined;
    },
    count: () => ask({ count: true }) as Promise<[number, number]>,
  };
}

function rawBinaryClient(port: number) {
  const { socket, ready, request, close } = rawConnection<Buffer>(port, rawFrames);
  return { ready, close, call: (bytes: Buffer) => request((id) => writeBinaryFrame(socket, id, bytes)) };
}

// ---- workloads ----
// Where several systems are given, their rounds alternate (raw, labc, Moleculer, NATS, raw...):
// a slow spell of this shared machine then hits each of them alike, and their ratios stay put.

type Label = System | "labc via router" | "labc reqpub" | "labc metrics off" | "labc serving hook";

/** `count` rounds of each entry, taken in turn; the results per entry. */
async function alternate<E, T>(entries: readonly E[], round: (entry: E) => Promise<T>, count = ROUNDS): Promise<T[][]> {
  const results = entries.map((): T[] => []);
  for (let i = 0; i < count; i++) {
    for (const [k, entry] of entries.entries()) results[k]!.push(await round(entry));
  }
  return results;
}

/**
 * Calls sent through the router, reqpubs, calls with metrics off and calls of a server with a
 * hook are labc's figures, in W7, W8, W11 and W12 rows named after the W1/W2 they repeat.
 */
function recordAs(label: Label, w1: string, set: (figure: string, system: System) => void): void {
  if (label === "labc via router") set(`W7 (${w1} through the router)`, "labc");
  else if (label === "labc reqpub") set(`W8 (${w1} as reqpub)`, "labc");
  else if (label === "labc metrics off") set(`W11 (${w1} with metrics off)`, "labc");
  else if (label === "labc serving hook") set(`W12 (${w1} to a server with a hook)`, "labc");
  else set(w1, label);
}

async function callFigures(entries: { system: Label; call: Call; serverPids: number[] }[]): Promise<void> {
  for (const { call } of entries) await warm(call, quick ? 200 : 2000);
  // W1 takes the systems' calls in turn (see `interleaved`); a round lasts as long as the
  // rounds of all systems did, one after the other.
  const w1 = entries.map((): Latencies[] => []);
  for (let i = 0; i < ROUNDS; i++) {
    const round = await interleaved(entries.map(({ call }) => call), ROUND_MS * entries.length);
    round.forEach((latencies, k) => w1[k]!.push(latencies));
  }
  // W2 alternates shorter rounds than the other figures, for the same reason: as long in all.
  const w2 = await alternate(
    entries,
    async ({ call, serverPids }) => {
      // CPU per call: the benchmark process runs only this system's client meanwhile.
      const [client, server] = [process.cpuUsage(), cpuMicros(serverPids)];
      const { perSecond, calls } = await concurrent(call, 100, W2_ROUND_MS);
      const used = process.cpuUsage(client);
      return { perSecond, clientUs: (used.user + used.system) / calls, serverUs: (cpuMicros(serverPids) - server) / calls };
    },
    W2_ROUNDS,
  );
  entries.forEach(({ system }, k) => {
    const of = (key: "perSecond" | "p50" | "p99") => median(w1[k]!.map((run) => run[key]));
    recordAs(system, "W1", (w, as) => {
      record(`${w} sequential calls`, "calls/s", "higher", as, of("perSecond"));
      record(`${w} p50 latency`, "µs", "lower", as, of("p50"));
      record(`${w} p99 latency`, "µs", "lower", as, of("p99"));
    });
    recordAs(system, "W2", (w, as) => record(`${w} 100 in flight`, "calls/s", "higher", as, median(w2[k]!.map((r) => r.perSecond))));
    if (system === "labc via router" || system === "labc reqpub") return;
    recordAs(system, "W2", (w, as) => {
      record(`${w} CPU per call, client`, "µs", "lower", as, median(w2[k]!.map((r) => r.clientUs)));
      record(`${w} CPU per call, server`, "µs", "lower", as, median(w2[k]!.map((r) => r.serverUs)));
    });
  });
}

/** What the subscribers counted: deliveries, and when the last arrived (epoch ms). */
type Counted = { count: number; lastAt: number };

function sum(answers: [number, number][]): Counted {
  return { count: answers.reduce((total, [n]) => total + n, 0), lastAt: Math.max(0, ...answers.map(([, at]) => at)) };
}

interface Publisher {
  system: System;
  /** Other ways a user publishes with this system, each measured as a figure of its own (labc). */
  styles?: { name: string; publish: Publisher["publish"] }[];
  /** Publishes; a promise means the publisher must wait (backpressure) before the next. */
  publish: (value: unknown) => Promise<unknown> | void;
  counted: () => Promise<Counted>;
  deliveriesPerMessage: number;
}

/**
 * Publishes a number of messages and waits until the subscribers counted them all; the rate is
 * taken from the subscribers' own clock of the last arrival, so the polling costs nothing. A
 * first run of PROBE_PUBLICATIONS warms up and sizes the rounds, so that each lasts about
 * ROUND_MS whatever the system's speed: a round of a few milliseconds would measure the noise.
 */
async function pubsubFigure(figure: string, publishers: Publisher[]): Promise<void> {
  const run = async ({ system, publish, counted, deliveriesPerMessage }: Publisher, messages: number) => {
    const before = (await counted()).count;
    const want = before + messages * deliveriesPerMessage;
    const t0 = performance.timeOrigin + performance.now();
    for (let i = 0; i < messages; i++) {
      const wait = publish(i);
      if (wait) await wait;
      // Let sockets drain now and then, as a real publisher's loop would.
      if (i % 1000 === 999) await new Promise((done) => setImmediate(done));
    }
    const end = performance.now() + 30000;
    let now = await counted();
    while (now.count < want && performance.now() < end) {
      await sleep(20);
      now = await counted();
    }
    if (now.count < want) notes.push(`${system} ${figure}: ${want - now.count} of ${want - before} deliveries missing after 30 s`);
    return ((now.count - before) / (now.lastAt - t0)) * 1000;
  };
  const sized = [];
  for (const publisher of publishers) {
    const probe = await run(publisher, PROBE_PUBLICATIONS);
    const perRound = (probe / publisher.deliveriesPerMessage) * (ROUND_MS / 1000);
    sized.push({ publisher, messages: Math.round(Math.min(MAX_PUBLICATIONS, Math.max(PROBE_PUBLICATIONS, perRound))) });
  }
  const rates = await alternate(sized, ({ publisher, messages }) => run(publisher, messages));
  publishers.forEach(({ system }, k) => record(figure, "msgs/s", "higher", system, median(rates[k]!)));
}

async function throughputFigure(figure: string, bytes: number, entries: { system: System; call: Call }[]): Promise<void> {
  for (const { call } of entries) await warm(call, 2);
  const ms = Math.max(ROUND_MS, quick ? 300 : 1000);
  const rates = await alternate(entries, async ({ call }) => (await sequential(call, ms)).perSecond, W4_ROUNDS);
  entries.forEach(({ system }, k) => {
    const perSecond = median(rates[k]!);
    record(figure, "MB/s", "higher", system, { value: (perSecond.value * bytes) / 1e6, spread: perSecond.spread });
  });
}

// ---- systems ----
// Every system is started first and stays up, so that each workload can alternate their rounds.

const wanted = (system: System) => !only || only.has(system);
/** Starts behind the "W6 ready after start" figure, whose median is taken. */
const READY_STARTS = quick ? 1 : 5;

/** A system under measurement: what each workload needs of it. */
interface Measured {
  system: System;
  /** The processes that serve its calls (their CPU time per call is a figure). */
  serverPids: number[];
  /** Calls the echo function with `value`, resolves with the answer. */
  call: (value: unknown) => Promise<unknown>;
  /** Echoes raw bytes (W4's binary figures), where the system has binary messages. */
  callBinary?: (bytes: Buffer) => Promise<unknown>;
  /** Whether it carries 1 MiB messages (nats-server refuses them by default). */
  largeMessages: boolean;
  /** `count` subscribers, each counting what arrives, and how to publish to them (where it has pub/sub). */
  subscribers?: (count: number) => Promise<{ publisher: Publisher; stop: () => void }>;
  close: () => Promise<void> | void;
}

/** Starts a server READY_STARTS times, records the median time until it served, keeps the last. */
async function readyServer(system: System, command: string, args: string[], env?: NodeJS.ProcessEnv) {
  const times: number[] = [];
  let server: Awaited<ReturnType<typeof start>> | undefined;
  for (let i = 0; i < READY_STARTS; i++) {
    if (server) stop(server.child);
    server = await start(command, args, env);
    times.push(server.ms);
  }
  record("W6 ready after start", "ms", "lower", system, median(times));
  await sleep(300);
  record("W6 idle RSS, server", "MB", "lower", system, { value: rssMb(server!.child.pid!), spread: 0 });
  return server!;
}

async function startRaw(): Promise<Measured> {
  const server = await readyServer("raw", process.execPath, [here("./raw-server.js")]);
  const binaryServer = await start(process.execPath, [here("./raw-server.js"), "binary"]);
  const client = rawClient(Number(server.line));
  const binary = rawBinaryClient(Number(binaryServer.line));
  await Promise.all([client.ready, binary.ready]);
  return {
    system: "raw",
    serverPids: [server.child.pid!],
    call: client.call,
    callBinary: binary.call,
    largeMessages: true,
    subscribers: async (count) => {
      const subscribers = await Promise.all(Array.from({ length: count }, () => start(process.execPath, [here("./raw-server.js")])));
      const clients = subscribers.map((s) => rawClient(Number(s.line)));
      await Promise.all(clients.map((c) => c.ready));
      return {
        publisher: {
          system: "raw",
          // The raw publisher writes each message to every subscriber itself.
          publish: (value) => {
            const waits = clients.flatMap((c) => c.publish(value) ?? []);
            return waits.length ? Promise.all(waits) : undefined;
          },
          counted: async () => sum(await Promise.all(clients.map((c) => c.count()))),
          deliveriesPerMessage: count,
        },
        stop: () => {
          clients.forEach((c) => c.close());
          subscribers.forEach((s) => stop(s.child));
        },
      };
    },
    close: () => {
      client.close();
      binary.close();
      stop(server.child);
      stop(binaryServer.child);
    },
  };
}

interface LabcSystem extends Measured {
  system: LabcKind;
  runtime: Runtime;
  serverPid: number;
  /** The process whose subscriber answers W8's reqpubs. */
  answerPid: number;
  routerPid: number;
  env: NodeJS.ProcessEnv;
}

/** A labc host of its own (root port, config folder) with an echo server; with a secret or not. */
async function startLabc(system: LabcKind): Promise<LabcSystem> {
  const host = await benchHost("labc-bench-");
  const { dir, rootPort } = host;
  const env = system === "labc-secret" ? { ...host.env, LABC_SECRET: newSecret() } : host.env;
  const echo = join(PACKAGE_ROOT, "services", "echo.ts");
  // The first server of a host also starts its router; the figure is for a server after it.
  const first = await start(process.execPath, [CLI_PATH, "serve", echo], env);
  notes.push(`${system}: the first server of a host was ready ${first.ms.toFixed(0)} ms after its start, its router included`);
  const server = await readyServer(system, process.execPath, [CLI_PATH, "serve", echo], env);
  stop(first.child);
  const runtime = new Runtime(loadConfig({ env, flags: { "router.port": rootPort } }).values);
  // Until the router has seen the first server go and said so, a call may be sent to it and be
  // lost with its connection (seen on a loaded machine as ConnectionLostError in `npm test`).
  const firstPid = first.child.pid!;
  for (let waited = 0; ; waited += 50) {
    await runtime.admin.sync();
    if (![...runtime.admin.pool.servers.values()].some((s) => s.pid === firstPid)) break;
    if (waited >= 10_000) throw new Error(`${system}: the router still lists the stopped server (pid ${firstPid}) after 10 s`);
    await sleep(50);
  }
  await runtime.call("echo", SMALL);
  const routerPid = runtime.admin.routerPid!;
  extraPids.push(routerPid);
  await sleep(300);
  record("W6 idle RSS, router", "MB", "lower", system, { value: rssMb(routerPid), spread: 0 });
  const answer = await start(process.execPath, [CLI_PATH, "serve", here("../../bench/bench-answer.ts")], env);
  await runtime.admin.sync();
  return {
    system,
    runtime,
    serverPid: server.child.pid!,
    answerPid: answer.child.pid!,
    serverPids: [server.child.pid!],
    routerPid,
    env,
    call: (value) => runtime.call("echo", value),
    callBinary: (bytes) => runtime.call("echo", bytes),
    largeMessages: true,
    subscribers: async (count) => {
      const subscribers = await Promise.all(
        Array.from({ length: count }, () => start(process.execPath, [CLI_PATH, "serve", here("../../bench/bench-service.ts")], env)),
      );
      await runtime.publish("bench.tick", -1); // opens the connections
      return {
        publisher: {
          system,
          publish: (value) => void runtime.publish("bench.tick", value),
          counted: async () => sum((await runtime.callAll("benchCount", [])).map((answer) => answer.value as [number, number])),
          deliveriesPerMessage: count,
          styles: publisherStyles((value) => runtime.publish("bench.tick", value)),
        },
        // Subscribers of one round must be gone from the pool before the next round's start.
        stop: () => subscribers.forEach((s) => stop(s.child)),
      };
    },
    close: async () => {
      await runtime.close();
      stop(server.child);
      stop(answer.child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** W7: the echo call sent through the router, as a caller that cannot open the server's port. */
function viaRouter({ runtime, serverPid }: LabcSystem): Call {
  const target = [...runtime.admin.pool.servers.values()].find((s) => s.pid === serverPid)!;
  return () => runtime.admin.forward(target.id, "echo", [SMALL], 30000);
}

/**
 * labc on a host of its own, its server and its caller with `env` added, the server serving
 * `echo` from `service`: W11 (`metrics.enabled = false`) and W12 (a server with a hook that does
 * nothing; the caller is this process, whose hooks would slow every system measured). What
 * counting, or a hook, costs is labc's W1/W2 against these.
 */
async function labcVariant(system: Label, env: NodeJS.ProcessEnv, service: string): Promise<{ system: Label; call: Call; serverPids: number[] }> {
  const host = await benchHost(`labc-bench-${system.replaceAll(" ", "-")}-`);
  const withEnv = { ...host.env, ...env };
  const server = await start(process.execPath, [CLI_PATH, "serve", service], withEnv);
  const runtime = new Runtime(loadConfig({ env: withEnv, flags: { "router.port": host.rootPort } }).values);
  await runtime.call("echo", SMALL);
  extraPids.push(runtime.admin.routerPid!);
  closing.push(async () => {
    await runtime.close();
    rmSync(host.dir, { recursive: true, force: true });
  });
  return { system, call: () => runtime.call("echo", SMALL), serverPids: [server.child.pid!] };
}

/** The router's memory after W7, and W5, which only labc has. */
async function labcOnlyFigures({ system, routerPid, env }: LabcSystem): Promise<void> {
  // Relaying warmed V8's optimizing compiler up in the router: its code pages are now resident.
  await sleep(300);
  if (system === "labc") record("W6 RSS, router after relaying W7", "MB", "lower", system, { value: rssMb(routerPid), spread: 0 });
  const times = (quick ? [0, 1] : [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).map(() => {
    const t0 = performance.now();
    const result = spawnSync(process.execPath, [CLI_PATH, "call", "echo", "hi"], { env, encoding: "utf8" });
    if (result.stdout !== "hi\n") notes.push(`labc W5: unexpected output ${JSON.stringify(result.stdout + result.stderr)}`);
    return performance.now() - t0;
  });
  record("W5 `labc call echo hi`", "ms", "lower", system, median(times));
  await streamAndJobFigures(system, env);
  if (system === "labc") await callingHookFigures(env);
}

/**
 * W13: W2 made by a process of its own with a hook that does nothing, against the same process
 * without one, their rounds alternating (bench/bench-caller.ts; the echo server is labc's).
 */
async function callingHookFigures(env: NodeJS.ProcessEnv): Promise<void> {
  const callers = await Promise.all(
    ([["plain", "0"], ["hooked", "1"]] as const).map(([name, hook]) =>
      start(process.execPath, [CLI_PATH, "serve", here("../../bench/bench-caller.ts")], { ...env, BENCH_CALLER_NAME: `bench.${name}`, BENCH_CALLER_HOOK: hook }),
    ),
  );
  const runtime = new Runtime(loadConfig({ env }).values);
  try {
    const count = quick ? 2_000 : 20_000;
    const round = (name: string) => runtime.callWith<{ perSecond: number; cpuUs: number }>(`bench.${name}`, [count, 100], { timeoutMs: 120_000 });
    for (const name of ["plain", "hooked"]) await round(name);
    const [plain, hooked] = await alternate(["plain", "hooked"], round);
    for (const [label, rounds] of [["no hook", plain!], ["a no-op hook", hooked!]] as const) {
      record(`W13 (W2 from a caller process, ${label}) 100 in flight`, "calls/s", "higher", "labc", median(rounds.map((r) => r.perSecond)));
      record(`W13 (W2 from a caller process, ${label}) CPU per call, client`, "µs", "lower", "labc", median(rounds.map((r) => r.cpuUs)));
    }
  } finally {
    await runtime.close();
    for (const caller of callers) stop(caller.child);
  }
}

/** W9 streams (next to W4) and W10 `labc.map` over 3 servers (next to the same calls one by one). */
async function streamAndJobFigures(system: LabcKind, env: NodeJS.ProcessEnv): Promise<void> {
  const workers = await Promise.all([0, 1, 2].map(() => start(process.execPath, [CLI_PATH, "serve", here("../../bench/bench-worker.ts")], env)));
  const runtime = new Runtime(loadConfig({ env }).values);
  try {
    const drain = async (name: string, args: unknown[], bytesOf: (item: any) => number) => {
      const t0 = performance.now();
      let items = 0;
      let bytes = 0;
      for await (const item of runtime.streamWith(name, args, { scope: "network" })) {
        items++;
        bytes += bytesOf(item);
      }
      const s = (performance.now() - t0) / 1000;
      return { items: items / s, mb: bytes / 1e6 / s };
    };
    const CHUNK = 64 * 1024;
    const chunks = quick ? 100 : 4000;
    const small = quick ? 2_000 : 200_000;
    await drain("benchChunks", [CHUNK, 50], (c: Buffer) => c.length);
    const chunkRounds = await alternate([0], () => drain("benchChunks", [CHUNK, chunks], (c: Buffer) => c.length));
    record("W9 stream of 64 KiB chunks", "MB/s", "higher", system, median(chunkRounds[0]!.map((r) => r.mb)));
    const itemRounds = await alternate([0], () => drain("benchItems", [small], () => 0));
    record("W9 stream of small items", "items/s", "higher", system, median(itemRounds[0]!.map((r) => r.items)));

    const ITEM_MS = 5;
    const count = quick ? 24 : 600;
    const items = Array.from({ length: count }, () => ITEM_MS);
    await runtime.map("benchWork", items.slice(0, 12));
    const oneByOne = async () => {
      const t0 = performance.now();
      for (const item of items.slice(0, count / 6)) await runtime.call("benchWork", item);
      return (count / 6 / (performance.now() - t0)) * 1000;
    };
    const mapped = async () => {
      const t0 = performance.now();
      await runtime.map("benchWork", items, { perServer: 4 });
      return (count / (performance.now() - t0)) * 1000;
    };
    const [one, map] = await alternate([oneByOne, mapped], (run) => run());
    record(`W10 ${ITEM_MS} ms items, calls one by one`, "items/s", "higher", system, median(one!));
    record(`W10 ${ITEM_MS} ms items, map over 3 servers (4 each)`, "items/s", "higher", system, median(map!));
  } finally {
    await runtime.close();
    for (const worker of workers) stop(worker.child);
  }
}

/** Loads a peer's package from bench/peers, or says why it cannot. */
function peer(name: string): any {
  try {
    return createRequire(join(PEERS, "package.json"))(name);
  } catch {
    notes.push(`${name}: not installed (npm run bench:setup); skipped`);
    return undefined;
  }
}

async function startMoleculer(): Promise<Measured | undefined> {
  const lib = peer("moleculer");
  if (!lib) return undefined;
  const [serverPort, clientPort] = [await freePort(), await freePort()];
  const subscriberPorts = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => freePort()));
  const nodes = [
    `127.0.0.1:${serverPort}/server`,
    `127.0.0.1:${clientPort}/client`,
    ...subscriberPorts.map((port, i) => `127.0.0.1:${port}/sub${i + 1}`),
  ];
  const script = join(PEERS, "moleculer-node.mjs");
  const others = (self: string) => nodes.filter((n) => !n.endsWith(`/${self}`));
  const server = await start(process.execPath, [script, "server", String(serverPort), ...others("server")]);
  // Every node of the static list up before the client looks for services.
  const subscribers = await Promise.all(
    subscriberPorts.map((port, i) => start(process.execPath, [script, `sub${i + 1}`, String(port), ...others(`sub${i + 1}`)])),
  );
  record("W6 ready after start", "ms", "lower", "moleculer", { value: server.ms, spread: 0 });
  await sleep(300);
  record("W6 idle RSS, server", "MB", "lower", "moleculer", { value: rssMb(server.child.pid!), spread: 0 });
  const broker = new lib.ServiceBroker({
    nodeID: "client",
    logger: false,
    transporter: {
      type: "TCP",
      options: { udpDiscovery: false, port: clientPort, urls: others("client"), maxPacketSize: 64 * 1024 * 1024 },
    },
  });
  await broker.start();
  await broker.waitForServices(["echo", ...subscriberPorts.map((_, i) => `sub${i + 1}`)], 20000);
  const count = (n: number) => async () =>
    sum(await Promise.all(Array.from({ length: n }, (_, i) => broker.call(`sub${i + 1}.count`) as Promise<[number, number]>)));
  return {
    system: "moleculer",
    serverPids: [server.child.pid!],
    call: (value) => broker.call("echo.echo", { v: value }),
    largeMessages: true,
    // The subscriber nodes are part of the static node list, so they run from the start.
    subscribers: async (n) => ({
      publisher: {
        system: "moleculer",
        // emit: one instance of each listening service gets it; broadcast: all of them.
        publish: n === 1 ? (v) => void broker.emit("bench.tick", v, ["sub1"]) : (v) => void broker.broadcast("bench.tick", v),
        counted: count(n),
        deliveriesPerMessage: n,
      },
      stop: () => {},
    }),
    close: async () => {
      await broker.stop();
      subscribers.forEach((s) => stop(s.child));
      stop(server.child);
    },
  };
}

async function startNats(): Promise<Measured | undefined> {
  const lib = peer("nats");
  if (!lib) return undefined;
  if (spawnSync("nats-server", ["--version"]).status !== 0) {
    notes.push("nats-server: not installed (Debian package nats-server, see npm run bench:setup); skipped");
    return undefined;
  }
  const port = await freePort();
  const server = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  children.push(server);
  await sleep(300);
  const script = join(PEERS, "nats-node.mjs");
  const echo = await start(process.execPath, [script, String(port), "echo"]);
  const nc = await lib.connect({ servers: `127.0.0.1:${port}` });
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  notes.push("nats: W4 not measured (nats-server refuses messages over 1 MiB by default)");
  return {
    system: "nats",
    serverPids: [server.pid!, echo.child.pid!],
    call: async (value) => JSON.parse(decoder.decode((await nc.request("echo", encoder.encode(JSON.stringify(value)), { timeout: 10000 })).data)),
    largeMessages: false,
    subscribers: async (n) => {
      const subscribers = await Promise.all(Array.from({ length: n }, (_, i) => start(process.execPath, [script, String(port), `sub${i + 1}`])));
      const counted = async () => {
        const answers = await Promise.all(
          Array.from({ length: n }, (_, i) => nc.request(`sub${i + 1}.count`, new Uint8Array(), { timeout: 10000 })),
        );
        return sum(answers.map((a: { data: Uint8Array }) => JSON.parse(decoder.decode(a.data))));
      };
      return {
        publisher: { system: "nats", publish: (v) => nc.publish("bench.tick", encoder.encode(JSON.stringify(v))), counted, deliveriesPerMessage: n },
        stop: () => subscribers.forEach((s) => stop(s.child)),
      };
    },
    close: async () => {
      await nc.close();
      stop(echo.child);
      stop(server);
    },
  };
}

/** Every workload, each across all the systems started, their rounds alternating. */
async function measure(systems: Measured[], labcs: LabcSystem[]): Promise<void> {
  // W1-W3 from one process to one other against raw and the peers are the shared harness's
  // (`npm run bench:peers`): here labc's own, which W7, W8, W11 and W12 are taken against.
  const calls: { system: Label; call: Call; serverPids: number[] }[] = labcs.map(({ system, call, serverPids }) => ({
    system,
    serverPids,
    call: () => call(SMALL),
  }));
  const labc = labcs.find((l) => l.system === "labc");
  if (labc) calls.push({ system: "labc via router", call: viaRouter(labc), serverPids: [labc.serverPid, labc.routerPid] });
  if (labc) calls.push({ system: "labc reqpub", call: () => labc.runtime.reqpub("bench.ask", SMALL), serverPids: [labc.answerPid] });
  if (labc) calls.push(await labcVariant("labc metrics off", { LABC_METRICS_ENABLED: "false" }, join(PACKAGE_ROOT, "services", "echo.ts")));
  if (labc) calls.push(await labcVariant("labc serving hook", {}, join(PACKAGE_ROOT, "bench", "hooked-echo.ts")));
  await callFigures(calls);
  for (const each of labcs) await labcOnlyFigures(each);
  const json = "x".repeat(1024 * 1024);
  const large = systems.filter((s) => s.largeMessages);
  await throughputFigure("W4 JSON string 1 MiB", json.length, large.map(({ system, call }) => ({ system, call: () => call(json) })));
  for (const [label, size] of [["64 KiB", 64 * 1024], ["16 MiB", 16 * 1024 * 1024]] as const) {
    const payload = Buffer.alloc(size, 7);
    const binary = systems.flatMap(({ system, callBinary }) => (callBinary ? [{ system, call: () => callBinary(payload) }] : []));
    await throughputFigure(`W4 binary ${label}`, size, binary);
  }
  for (const [figure, count] of [["W3 pub/sub 1 → 1", 1], [`W3 fan-out to ${SUBSCRIBERS}`, SUBSCRIBERS]] as const) {
    const measured = count === 1 ? labcs : systems;
    const sets = await Promise.all(measured.flatMap((s) => (s.subscribers ? [s.subscribers(count)] : [])));
    const publishers = sets.map((set) => set.publisher);
    await pubsubFigure(figure, publishers);
    if (count === 1) {
      // The same subscribers, labc publishing as users write it; the others as before, alternating.
      for (const name of publishers.flatMap((p) => p.styles ?? []).map((style) => style.name).filter((n, i, all) => all.indexOf(n) === i)) {
        const styled = publishers.map((p) => ({ ...p, publish: p.styles?.find((style) => style.name === name)?.publish ?? p.publish }));
        await pubsubFigure(`${figure}, labc ${name}`, styled);
      }
    }
    sets.forEach((set) => set.stop());
    await sleep(200);
  }
}

/**
 * How users publish with labc, beyond fire-and-forget (`void labc.publish(...)`, the W3
 * figures): awaiting each publication, and awaiting batches of 1000.
 */
function publisherStyles(publish: (value: unknown) => Promise<number>): { name: string; publish: Publisher["publish"] }[] {
  let batch: Promise<number>[] = [];
  return [
    { name: "await each", publish },
    {
      name: "batches of 1000",
      publish: (value) => {
        batch.push(publish(value));
        if (batch.length < 1000) return undefined;
        const all = Promise.all(batch);
        batch = [];
        return all;
      },
    },
  ];
}

// ---- report ----

function report(): void {
  const systems: System[] = ["raw", "labc", "labc-secret", "moleculer", "nats"];
  const format = (row: Row, system: System) => {
    const figure = row.values[system];
    if (!figure) return "-";
    const base = row.values.raw?.value;
    const digits = figure.value >= 100 ? 0 : 1;
    const ratio = base && system !== "raw" ? ` (${(figure.value / base).toFixed(2)}x)` : "";
    const spread = figure.spread > 0.2 ? ` ±${Math.round(figure.spread * 100)}%` : "";
    return `${figure.value.toFixed(digits)}${ratio}${spread}`;
  };
  print([["figure", "unit", ...systems], ...rows.map((row) => [row.figure, `${row.unit} (${row.better})`, ...systems.map((s) => format(row, s))])]);
  console.log(`\n(x) is the ratio to raw in this run; ±N% the spread of the rounds (${ROUNDS}, W2 ${W2_ROUNDS}, W4 ${W4_ROUNDS}; W1 takes the systems' calls in turn, in bursts of 50) when over 20%.`);
  console.log(
    "raw is Node's net as a careful engineer writes it: the answers to one read leave in one write, a client's writes\n" +
      "of one tick in one write, a publisher writes corked batches of 1000 and waits for `drain`. W1, W2 and W3 1 → 1\n" +
      "against raw, the envelope RPC, Moleculer, ZeroMQ and NATS, each role in a process of its own: `npm run\n" +
      "bench:peers`, the benchmark of record; here labc's own figures for them, which the ratios below are taken against.",
  );
  const others = systems.filter((system) => system !== "labc" && system !== "labc-secret");
  const compared = rows.filter((row) => row.values.labc && others.some((system) => row.values[system]));
  console.log("\nlabc against each system: how many times better labc did (under 1: worse)");
  print([
    ["figure", ...others],
    ...compared.map((row) => [row.figure, ...others.map((system) => advantage(row, system)?.toFixed(2) ?? "-")]),
  ]);
  const labcValue = (figure: string) => rows.find((row) => row.figure === figure)?.values.labc?.value;
  const cost = (direct: string, routed: string, better: Row["better"]) => {
    const [d, r] = [labcValue(direct), labcValue(routed)];
    return d && r ? (better === "higher" ? d / r : r / d).toFixed(2) : "-";
  };
  console.log(
    `\nW7, through the router against direct (target ≤ 1.6, issue 31): p50 ${cost("W1 p50 latency", "W7 (W1 through the router) p50 latency", "lower")}x,` +
      ` calls/s ${cost("W1 sequential calls", "W7 (W1 through the router) sequential calls", "higher")}x,` +
      ` 100 in flight ${cost("W2 100 in flight", "W7 (W2 through the router) 100 in flight", "higher")}x`,
  );
  console.log(
    `W9, a stream of 64 KiB chunks against W4 binary 16 MiB (target ≥ 0.8): ${cost("W9 stream of 64 KiB chunks", "W4 binary 16 MiB", "higher")}x;` +
      ` W10, map over 3 servers against one by one: ${cost("W10 5 ms items, map over 3 servers (4 each)", "W10 5 ms items, calls one by one", "higher")}x`,
  );
  console.log(
    `W8, reqpub against a call (one subscriber, who answers): p50 ${cost("W1 p50 latency", "W8 (W1 as reqpub) p50 latency", "lower")}x,` +
      ` 100 in flight ${cost("W2 100 in flight", "W8 (W2 as reqpub) 100 in flight", "higher")}x`,
  );
  console.log(
    `W11, metrics' cost, labc with them ÷ without (target within 3 %): W1 p50 ${cost("W1 p50 latency", "W11 (W1 with metrics off) p50 latency", "higher")}x,` +
      ` W2 calls/s ${cost("W2 100 in flight", "W11 (W2 with metrics off) 100 in flight", "higher")}x,` +
      ` W2 CPU per call: client ${cost("W2 CPU per call, client", "W11 (W2 with metrics off) CPU per call, client", "higher")}x,` +
      ` server ${cost("W2 CPU per call, server", "W11 (W2 with metrics off) CPU per call, server", "higher")}x`,
  );
  console.log(
    `W12, a hook's cost on the serving side, a server with a hook that does nothing ÷ without: W1 p50 ${cost("W12 (W1 to a server with a hook) p50 latency", "W1 p50 latency", "higher")}x,` +
      ` W2 calls/s ${cost("W12 (W2 to a server with a hook) 100 in flight", "W2 100 in flight", "higher")}x,` +
      ` W2 CPU per call, server ${cost("W12 (W2 to a server with a hook) CPU per call, server", "W2 CPU per call, server", "higher")}x`,
  );
  console.log(
    `W13, a hook's cost on the calling side, a caller with a hook that does nothing ÷ without: W2 calls/s ${cost("W13 (W2 from a caller process, a no-op hook) 100 in flight", "W13 (W2 from a caller process, no hook) 100 in flight", "higher")}x,` +
      ` CPU per call, client ${cost("W13 (W2 from a caller process, a no-op hook) CPU per call, client", "W13 (W2 from a caller process, no hook) CPU per call, client", "higher")}x`,
  );
  secretCost();
  for (const note of notes) console.log(`note: ${note}`);
}

/** What the network secret costs: labc with it against labc without, in this run (issue 10's targets). */
function secretCost(): void {
  const lines = [
    ["W1 p50 latency", "≤ 1.3"],
    ["W2 100 in flight", "≥ 0.7"],
    ["W3 pub/sub 1 → 1", "≥ 0.7"],
    ["W3 pub/sub 1 → 1, labc await each", "≥ 0.7"],
    ["W3 pub/sub 1 → 1, labc batches of 1000", "≥ 0.7"],
    [`W3 fan-out to ${SUBSCRIBERS}`, "≥ 0.7"],
    ["W4 binary 64 KiB", "-"],
    ["W4 binary 16 MiB", "-"],
    ["W5 `labc call echo hi`", "≤ 1.3"],
  ].flatMap(([figure, target]) => {
    const row = rows.find((r) => r.figure === figure);
    const [plain, secret] = [row?.values.labc?.value, row?.values["labc-secret"]?.value];
    return plain && secret ? [[figure!, (secret / plain).toFixed(2), target!]] : [];
  });
  if (!lines.length) return;
  console.log("\nThe network secret's cost: labc with it ÷ labc without, in this run");
  print([["figure", "ratio", "target"], ...lines]);
}

function print(table: string[][]): void {
  const widths = table[0]!.map((_, i) => Math.max(...table.map((line) => line[i]!.length)));
  for (const line of table) console.log(line.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
}

/** How many times better labc did than `system` on this figure, whichever way is better. */
function advantage(row: Row, system: System): number | undefined {
  const [labc, other] = [row.values.labc?.value, row.values[system]?.value];
  if (!labc || !other) return undefined;
  return row.better === "higher" ? labc / other : other / labc;
}

async function main(): Promise<void> {
  const systems: Measured[] = [];
  try {
    const raw = wanted("raw") ? await startRaw() : undefined;
    const labcs: LabcSystem[] = [];
    for (const kind of ["labc", "labc-secret"] as const) if (wanted(kind)) labcs.push(await startLabc(kind));
    const moleculer = wanted("moleculer") ? await startMoleculer() : undefined;
    const nats = wanted("nats") ? await startNats() : undefined;
    for (const system of [raw, ...labcs, moleculer, nats]) if (system) systems.push(system);
    await measure(systems, labcs);
  } finally {
    for (const system of systems) await system.close();
    for (const close of closing) await close();
    for (const child of children) stop(child);
    for (const pid of extraPids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
  report();
  const dir = join(PACKAGE_ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const withAdvantage = rows.map((row) => ({
    ...row,
    labcAdvantage: Object.fromEntries((["raw", "moleculer", "nats"] as const).flatMap((system) => {
      const value = advantage(row, system);
      return value === undefined ? [] : [[system, value]];
    })),
  }));
  const result = { date: new Date().toISOString(), quick, rounds: ROUNDS, w4Rounds: W4_ROUNDS, rows: withAdvantage, notes };
  writeFileSync(join(dir, "latest.json"), `${JSON.stringify(result, null, 2)}\n`);
}

// Killed (a test's timeout, Ctrl-C): the servers it started, and through them their routers, end
// with it, instead of living on as orphans that start their router again.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    for (const child of children) stop(child);
    for (const pid of extraPids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    process.exit(1);
  });
}

await main();
// Peer clients (a Moleculer broker, a NATS connection) may hold the loop: the run is over.
process.exit(0);
