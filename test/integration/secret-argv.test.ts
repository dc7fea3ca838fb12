import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, expect, test } from "vitest";
import { unitPlan } from "../../cli/router-unit.js";
import { CLI_PATH } from "../../lib/paths.js";
import { newSecret, parseSecret, secretProblem } from "../../lib/trust/secret.js";
import { ECHO, TestHost, eventually, running, type CliResult } from "../helpers.js";

/**
 * Issue 27, item 6 and 8b: a network secret never travels in a command's arguments, which every
 * user of the computer reads (`ps`, /proc/PID/cmdline) for as long as the command runs, and an
 * error never repeats a secret typed wrong (a near miss is nearly the secret). Another user of
 * this computer is played for real: `nobody`, made with setpriv, polling every process's
 * arguments while the owner stores the secret and runs a server, its router and a service.
 */

const asRoot = process.getuid?.() === 0 && existsSync("/usr/bin/setpriv");
const withTerminal = asRoot && spawnSync("script", ["--version"]).status === 0;

let host: TestHost;
const started: ChildProcess[] = [];

beforeAll(async () => {
  host = await TestHost.start();
});
afterAll(async () => {
  for (const child of started) if (child.pid && running(child.pid)) child.kill("SIGKILL");
  await host.cleanup();
});

/** Whether `text` holds the secret or any 8 characters of it in a row (a near miss included). */
function leaks(text: string, secret: string): boolean {
  const body = secret.slice("labc1_".length);
  for (let at = 0; at + 8 <= body.length; at++) if (text.includes(body.slice(at, at + 8))) return true;
  return false;
}

/**
 * Another user of this computer (nobody), reading every process's arguments (and whatever
 * environment it may read) over and over: a bounded loop, ended by PID when the test is done.
 */
function otherUser() {
  const script = `i=0
while [ $i -lt 5000 ]; do
  ps -ww -eo pid,ppid,args
  cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n'
  cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'
  echo "--- round $i"
  i=$((i+1))
done`;
  const child = spawn("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script], {
    cwd: "/",
    env: { PATH: "/usr/bin:/bin" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(child);
  const seen = new Set<string>();
  let rounds = 0;
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (line.startsWith("--- round ")) rounds++;
    else seen.add(line);
  });
  const saw = (pattern: RegExp) => [...seen].some((line) => pattern.test(line));
  /**
   * The PID of a process ps showed with arguments matching `args`, and `pid` or parent `ppid`
   * when given; 0 when none. By PID: other tests' processes (the network-namespace tests run
   * beside this one) are in the same process table.
   */
  const sawProcess = ({ pid, ppid, args }: { pid?: number; ppid?: number; args: RegExp }): number => {
    for (const line of seen) {
      const listed = /^\s*(\d+)\s+(\d+) (.*)$/.exec(line);
      if (!listed || !args.test(listed[3]!)) continue;
      if ((pid === undefined || Number(listed[1]) === pid) && (ppid === undefined || Number(listed[2]) === ppid)) return Number(listed[1]);
    }
    return 0;
  };
  return {
    seen,
    saw,
    sawProcess,
    /** Resolves once the other user saw a line matching `pattern`. */
    sees: (pattern: RegExp, what: string) => eventually(() => saw(pattern), 20_000, `the other user saw ${what}`),
    /** Resolves with the PID of the process the other user saw in ps (see `sawProcess`). */
    seesProcess: async (which: Parameters<typeof sawProcess>[0], what: string): Promise<number> => {
      await eventually(() => sawProcess(which) > 0, 20_000, `the other user saw ${what}`);
      return sawProcess(which);
    },
    /** Resolves once it read everything once more, from start to end. */
    oneMoreRound: async () => {
      const now = rounds;
      await eventually(() => rounds >= now + 2, 20_000, "another round of the other user's reading");
    },
    stop: () => child.kill("SIGKILL"),
  };
}

/** Runs a child to its end (bounded), collecting what it printed. */
function ended(child: ChildProcess, ms = 20_000): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => (stdout += chunk));
  child.stderr?.on("data", (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`still running after ${ms} ms (it should have ended); stdout: ${stdout}; stderr: ${stderr}`));
    }, ms);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, raw: Buffer.from(stdout) });
    });
  });
}

test.skipIf(!asRoot)(
  "another user polling ps and /proc never sees the secret: while it is set from stdin, nor in a server, its router or a service it starts",
  async () => {
    const secret = newSecret();
    const watcher = otherUser();
    try {
      await watcher.sees(/^\s*PID\s+PPID (COMMAND|ARGS)$/, "ps's header");

      // 1. `labc secret set`, its stdin a pipe: it runs (and shows in ps) until the secret comes.
      const set = host.spawn(["secret", "set"], {}, "pipe");
      const setting = ended(set);
      await watcher.seesProcess({ pid: set.pid!, args: /cli\.js secret set$/ }, "labc secret set running");
      set.stdin!.end(`${secret}\n`);
      const stored = await setting;
      expect(stored.stderr).toBe("");
      expect(stored.code).toBe(0);
      expect(readFileSync(join(host.dir, "labc", "secret"), "utf8").trim()).toBe(secret);

      // 2. A server given the secret by environment; the router it starts gets it the same way.
      const served = await host.serve([ECHO], { LABC_SECRET: secret });
      started.push(served.child);
      await watcher.seesProcess({ pid: served.pid, args: /cli\.js serve .*echo\.ts$/ }, "labc serve");
      // The server started the router (its parent until the server exits). Seen by nobody, the
      // root-owned server and router show that it reads other users' processes (no hidepid):
      // what it saw, and did not see, means something.
      const routerPid = await watcher.seesProcess({ ppid: served.pid, args: /^labc router$/ }, "the router");
      // The router holds the secret (it refuses a caller without it), so it did get it.
      expect((await host.cli(["call", "echo", "over TLS"])).stdout).toBe("over TLS\n");
      const stranger = await host.cli(["call", "echo", "x"], { XDG_CONFIG_HOME: join(host.dir, "elsewhere") });
      expect(stranger.stderr).toContain("LABC_NOT_TRUSTED");

      // 3. A service the router's supervisor starts (ServiceControl), from the secret file.
      expect((await host.cli(["install", ECHO])).code).toBe(0);
      const start = await host.cli(["start-service", "echo"]);
      expect(start.stderr).toBe("");
      await watcher.seesProcess({ ppid: routerPid, args: /^labc service Echo$/ }, "the service the router started");
      expect((await host.cli(["call", "--all", "echo", "twice"])).stdout.match(/twice/g)).toHaveLength(2);

      await watcher.oneMoreRound();
    } finally {
      watcher.stop();
    }
    // And in all it read, not one piece of the secret.
    const all = [...watcher.seen].join("\n");
    expect(leaks(all, secret)).toBe(false);
  },
  120_000,
);

test("a secret given as an argument is refused, and the refusal does not repeat it", async () => {
  const secret = newSecret();
  const file = join(host.dir, "labc", "secret");
  const before = existsSync(file) ? readFileSync(file, "utf8") : undefined;

  for (const args of [
    ["secret", "set", secret],
    ["secret", "set", "--force", secret],
    ["secret", secret],
  ]) {
    const refused = await host.cli(args);
    expect(refused.code, `labc ${args.slice(0, 2).join(" ")} ...`).toBe(2);
    expect(refused.stderr).toContain("takes no argument: every user of this computer sees a command's arguments");
    expect(refused.stderr).toContain("labc secret show | ssh <this host> labc secret set");
    expect(leaks(refused.stdout + refused.stderr, secret)).toBe(false);
  }
  // Nothing was stored.
  expect(existsSync(file) ? readFileSync(file, "utf8") : undefined).toBe(before);

  // --set of any key holding a secret, for one command or a whole run of a server or router.
  for (const [args, instead] of [
    [["serve", ECHO, "--set", `network.secret=${secret}`], "LABC_SECRET"],
    [["router", "--set", `network.secret=${secret}`], "LABC_SECRET"],
    [["call", "echo", "x", `--set=network.secret=${secret}`], "LABC_SECRET"],
    [["call", "echo", "x", "--set", `backplane.pass=${secret}`], "LABC_BACKPLANE_PASS"],
    [["hosts", "--set", `backplane.token=${secret}`], "LABC_BACKPLANE_TOKEN"],
    [["call", "echo", "x", "--set", secret], "key=value"],
  ] as const) {
    const refused = await ended(host.spawn([...args]));
    expect(refused.code, `labc ${args[0]} --set ...`).toBe(2);
    expect(refused.stderr).toContain(instead);
    expect(leaks(refused.stdout + refused.stderr, secret)).toBe(false);
  }
});

test("a NATS address carrying a login is refused in an argument, and labc config shows it without the login", async () => {
  const pass = `pw${newSecret().slice(-12)}`;
  const refused = await ended(host.spawn(["hosts", "--set", `backplane.nats=nats://lab:${pass}@127.0.0.1:4222`]));
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("LABC_BACKPLANE_PASS");
  expect(refused.stdout + refused.stderr).not.toContain(pass);
  const shown = await host.cli(["config"], { LABC_BACKPLANE_NATS: `nats://lab:${pass}@127.0.0.1:4222` });
  expect(shown.code).toBe(0);
  expect(shown.stdout).toContain("nats://(login)@127.0.0.1:4222");
  expect(shown.stdout + shown.stderr).not.toContain(pass);
});

test("labc secret set reads stdin or --from-file, and says what to do when it gets nothing", async () => {
  const secret = newSecret();
  const nothing = await host.cli(["secret", "set", "--force"]);
  expect(nothing.code).toBe(2);
  expect(nothing.stderr).toContain("labc secret set read no secret on stdin: pipe it in (`labc secret show | ssh <this host> labc secret set`");

  const piped = await host.cliWithInput(["secret", "set", "--force"], `${secret}\n`);
  expect(piped.code).toBe(0);
  expect(readFileSync(join(host.dir, "labc", "secret"), "utf8").trim()).toBe(secret);

  const other = newSecret();
  const copy = join(host.dir, "carried");
  writeFileSync(copy, `${other}\n`, { mode: 0o600 });
  const fromFile = await host.cli(["secret", "set", "--force", "--from-file", copy]);
  expect(fromFile.code).toBe(0);
  expect(readFileSync(join(host.dir, "labc", "secret"), "utf8").trim()).toBe(other);
  // `show` then `set` on another host: the way the docs carry it, minus ssh.
  const shown = await host.cli(["secret", "show"]);
  expect(shown.stdout.trim()).toBe(other);
  // `new` tells how to carry it, and does not print it (`show` does).
  const made = await host.cli(["secret", "new", "--force"]);
  expect(made.stdout).toContain("To add a host: `labc invite` here prints a short one-time code, and `labc join <code>` there takes the secret.");
  expect(made.stdout).toContain("Or on every other host of this network: `labc secret show | ssh <host> labc secret set`");
  expect(made.stdout).not.toMatch(/labc1_[\w-]{43}/);
});

test.skipIf(!withTerminal)("in a terminal, labc secret set asks for the secret and does not echo it", async () => {
  const secret = newSecret();
  // `script` gives the command a terminal of its own; what we write is what is typed there.
  const command = `${process.execPath} ${CLI_PATH} secret set --force`;
  const child = spawn("script", ["-qec", command, "/dev/null"], { env: host.env, cwd: host.dir, stdio: ["pipe", "pipe", "pipe"] });
  started.push(child);
  let shown = "";
  child.stdout!.on("data", (chunk) => (shown += chunk));
  const done = ended(child);
  await eventually(() => shown.includes("paste the network secret"), 15_000, "the prompt");
  child.stdin!.write(`${secret}\r`);
  await eventually(() => shown.includes("the network secret is in"), 15_000, "the secret stored");
  child.stdin!.end();
  await done;
  expect(readFileSync(join(host.dir, "labc", "secret"), "utf8").trim()).toBe(secret);
  expect(shown).toContain("it is not shown");
  expect(leaks(shown, secret)).toBe(false);
});

test("a near-miss secret is refused naming where it came from and what is wrong, never repeating it", async () => {
  const secret = newSecret();
  const short = secret.slice(0, -1);
  const typo = `${secret.slice(0, 20)}!${secret.slice(21)}`;
  const otherPrefix = `labc2_${secret.slice(6)}`;
  const base64 = `${secret.slice(0, 30)}+${secret.slice(31)}`;
  const elsewhere = join(host.dir, "near-miss");
  const env = { XDG_CONFIG_HOME: elsewhere };

  const refusals: [CliResult, string, string, RegExp][] = [];
  // The environment, both names.
  refusals.push([await host.cli(["config"], { ...env, LABC_SECRET: short }), short, "env LABC_SECRET: network.secret:", /42 characters after labc1_ where a secret has 43/]);
  refusals.push([await host.cli(["config"], { ...env, LABC_NETWORK_SECRET: otherPrefix }), otherPrefix, "env LABC_NETWORK_SECRET:", /does not start with labc1_/]);
  // A server and its would-be router stop at once, saying the same.
  const served = await ended(host.spawn(["serve", ECHO], { ...env, LABC_SECRET: typo }));
  refusals.push([served, typo, "env LABC_SECRET:", /1 of its characters are not letters, digits, - or _ \(punctuation\)/]);
  // A config file (its owner's alone, as a file holding a secret must be).
  const toml = join(host.dir, "labc.toml");
  writeFileSync(toml, `[network]\nsecret = "${base64}"\n`, { mode: 0o600 });
  refusals.push([await host.cli(["config"], env), base64, `${toml}: network.secret:`, /plain base64 where a secret is base64url/]);
  writeFileSync(toml, "");
  // The secret file.
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(elsewhere, "labc"), { recursive: true });
  writeFileSync(join(elsewhere, "labc", "secret"), `${short}\n`, { mode: 0o600 });
  refusals.push([await host.cli(["call", "echo", "x"], env), short, `${join(elsewhere, "labc", "secret")}: network.secret:`, /42 characters after labc1_/]);
  // What was piped to `labc secret set`.
  const piped = await host.cliWithInput(["secret", "set", "--force"], `${typo}\n`);
  refusals.push([piped, typo, "stdin: network.secret:", /not letters, digits/]);

  for (const [result, nearMiss, where, what] of refusals) {
    expect(result.code, where).not.toBe(0);
    expect(result.stderr).toContain(where);
    expect(result.stderr).toMatch(what);
    expect(result.stderr).toContain("it is not repeated here");
    expect(result.stdout + result.stderr).not.toContain(nearMiss);
    expect(leaks(result.stdout + result.stderr, secret), `${where} repeats part of the secret: ${result.stderr}`).toBe(false);
  }
});

test("the unit labc enable writes carries no secret, even from a shell that holds one", () => {
  const secret = newSecret();
  const plan = unitPlan({ system: false, port: 55555, env: { ...process.env, LABC_SECRET: secret, LABC_NETWORK_SECRET: secret, XDG_CONFIG_HOME: host.dir } });
  expect(plan.text).toContain("ExecStart=");
  expect(leaks(plan.text, secret)).toBe(false);
});

test("what is wrong with a near miss is told by lengths and kinds of characters only", () => {
  const secret = newSecret();
  const cases: [string, RegExp][] = [
    [secret.slice(0, -1), /^it has 42 characters after labc1_ where a secret has 43; it is not repeated here$/],
    [`${secret}A`, /^it has 44 characters after labc1_ where a secret has 43/],
    [`labc1-${secret.slice(6)}`, /^it does not start with labc1_; it is not repeated here$/],
    [`LABC_SECRET=${secret}`, /^it does not start with labc1_ \(12 other characters come before it\); it has 61 characters where a secret has 49/],
    [`${secret.slice(0, 10)} ${secret.slice(11)}`, /^1 of its characters are not letters, digits, - or _ \(spaces or line breaks\)/],
    [`"${secret}"`, /quotes/],
    [`${secret.slice(0, 10)}é${secret.slice(11)}`, /non-ASCII characters/],
    ["", /^it is empty$/],
  ];
  for (const [nearMiss, told] of cases) {
    expect(secretProblem(nearMiss)).toMatch(told);
    expect(() => parseSecret(nearMiss, "/etc/somewhere")).toThrow(/^\/etc\/somewhere: network.secret: not a labc network secret/);
    try {
      parseSecret(nearMiss, "x");
    } catch (error) {
      expect(leaks((error as Error).message, secret)).toBe(false);
    }
  }
  expect(secretProblem(12345)).toBe("it is a number, not a text; it is not repeated here");
});
