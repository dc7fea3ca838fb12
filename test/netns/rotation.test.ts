import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CLI_PATH } from "../../lib/paths.js";
import { keyIdOf } from "../../lib/trust/network-key.js";
import { newSecret } from "../../lib/trust/secret.js";
import { Lan, lanUnavailable, sleep, within, type LanHost } from "./lan.js";

/**
 * `labc secret rotate` on three namespace hosts under a load of calls and publications: nothing
 * lost, every host on the new key within the window; a fourth host, off during the window, is
 * refused with how to catch up, and catches up with `labc invite` / `labc join --force`.
 */

const why = lanUnavailable();
const WINDOW_S = 12;

/** A script on `host` that calls the other hosts' functions and publishes, for `ms`, then says what it counted. */
function load(host: LanHost, targets: string[], ms: number) {
  return host.script(
    [
      "const counts = { calls: 0, errors: [], published: 0 };",
      `const end = Date.now() + ${ms};`,
      // Bounded: at most 3000 rounds, 40 ms apart.
      "for (let i = 0; i < 3000 && Date.now() < end; i++) {",
      `  for (const fn of ${JSON.stringify(targets.map((t) => `hit_${t}`))}) {`,
      "    try { if ((await labc.call(fn, i)) === i) counts.calls++; else counts.errors.push(`${fn}: wrong answer`); }",
      "    catch (error) { counts.errors.push(`${fn} ${i}: ${error.code} ${error.message}`); }",
      "  }",
      `  await labc.publish("load.${host.name}", i);`,
      "  counts.published++;",
      "  await new Promise((done) => setTimeout(done, 40));",
      "}",
      "console.log(JSON.stringify(counts));",
    ],
    ms + 30_000,
  );
}

async function status(host: LanHost): Promise<string> {
  const result = await host.cli(["secret", "status"]);
  if (result.code !== 0) throw new Error(`${host.name}: labc secret status: ${result.stderr}`);
  return result.stdout;
}

describe.skipIf(why)("rotating the secret on three hosts under load; a fourth off during the window", () => {
  let lan: Lan;
  let members: LanHost[];
  let h4: LanHost;
  const s1 = newSecret();

  beforeAll(async () => {
    lan = Lan.create(4);
    members = lan.hosts.slice(0, 3);
    h4 = lan.hosts[3]!;
    for (const host of lan.hosts) {
      // In the secret file, as `labc secret set` or `labc join` leave it: the rotation rewrites it.
      mkdirSync(join(host.dir, "labc"), { recursive: true });
      writeFileSync(join(host.dir, "labc", "secret"), `${s1}\n`, { mode: 0o600 });
    }
    for (const host of lan.hosts) {
      await host.serve([
        host.service(`Load${host.name}`, {
          [`hit_${host.name}`]: "return args[0];",
          listen: { decorator: 'subscribe("load.#")', body: "this.heard.push(args[0]);" },
          [`heard_${host.name}`]: "return this.heard.length;",
        }),
      ]);
    }
    await within(15000, "four hosts linked", async () => (await lan.hosts[0]!.hosts()).filter((h) => h.functions > 0).length === 4);
    // host4 goes off (a power cut) before the rotation: it knows the others, they forget it.
    h4.killAll();
    await within(10000, "host4 gone", async () => (await members[0]!.hosts()).filter((h) => h.state === "alive" || h.state === "self").length === 3);
  }, 90_000);
  afterAll(() => lan?.cleanup());

  test("nothing lost, every host on the new key within the window, the secret files rewritten", async () => {
    const [h1, h2, h3] = members as [LanHost, LanHost, LanHost];
    const runs = [load(h1, ["host2", "host3"], (WINDOW_S + 14) * 1000), load(h3, ["host1", "host2"], (WINDOW_S + 14) * 1000)];
    await sleep(3000);
    const rotated = await h2.cli(["secret", "rotate", "--window", `${WINDOW_S}s`]);
    expect(rotated.stderr).toBe("");
    const nextId = /to ([0-9a-f]{16}); both count until/.exec(rotated.stdout)![1]!;
    const started = Date.now();
    expect(rotated.stdout).toMatch(/host1\s+has key id/);
    // Every host has the next key well within the window.
    const learnedMs = await within(WINDOW_S * 1000, "every host has the next key", async () => {
      const text = await status(h1);
      return ["host1", "host2", "host3"].every((name) => new RegExp(`${name}\\s+${keyIdOf(s1)}\\s+${nextId}`).test(text));
    });
    expect(learnedMs).toBeLessThan(WINDOW_S * 1000);
    // A process started during the window works too.
    expect((await h3.cli(["call", "hit_host1", "7"])).stdout).toBe("7\n");
    // After the window: only the new key, on every host, in every secret file.
    await sleep(Math.max(0, started + WINDOW_S * 1000 - Date.now()) + 4000);
    for (const host of members) {
      expect(await status(host)).toMatch(new RegExp(`this host uses key id ${nextId}\\n`));
      const stored = readFileSync(join(host.dir, "labc", "secret"), "utf8").trim();
      expect(keyIdOf(stored)).toBe(nextId);
    }
    const text = await status(h1);
    for (const name of ["host1", "host2", "host3"]) expect(text).toMatch(new RegExp(`${name}\\s+${nextId}\\s*\\n`));
    // The load: every call answered, every publication heard by every subscriber.
    const [a, b] = (await Promise.all(runs)).map((result) => {
      expect(result.stderr).toBe("");
      return JSON.parse(result.stdout) as { calls: number; errors: string[]; published: number };
    });
    expect(a!.errors).toEqual([]);
    expect(b!.errors).toEqual([]);
    expect(a!.calls).toBe(a!.published * 2);
    expect(b!.calls).toBe(b!.published * 2);
    expect(a!.published).toBeGreaterThan(100);
    for (const host of members) {
      expect((await host.cli(["call", `heard_${host.name}`])).stdout).toBe(`${a!.published + b!.published}\n`);
    }
    // New links, with the new secret only, after the window.
    expect((await h1.cli(["call", "hit_host3", "9"])).stdout).toBe("9\n");
    expect((await h3.cli(["call", "hit_host2", "8"])).stdout).toBe("8\n");
  }, 120_000);

  test("host4, off during the window, is refused with how to catch up, and catches up with an invite", async () => {
    const [h1] = members as [LanHost];
    h4.spawn([CLI_PATH, "serve", h4.service("Back", { back: 'return "host4 back";' })]);
    // Its router dials the hosts it knew, with the old secret: they refuse and say why.
    await within(15000, "host1 names the missed rotation", () => readFileSync(join(h1.dir, "labc", "router-55555.log"), "utf8").includes("missed the rotation"));
    const log = readFileSync(join(h1.dir, "labc", "router-55555.log"), "utf8");
    expect(log).toMatch(/previous secret .*it missed the rotation; run `labc invite` on a member and `labc join --force`/);
    await within(15000, "host4 told how to catch up", () =>
      readFileSync(join(h4.dir, "labc", "router-55555.log"), "utf8").includes("`labc join --force` on it"),
    );
    expect((await h1.cli(["call", "back"])).code).not.toBe(0);
    // Catching up: an invite from a member, then host4's processes started again.
    const invite = h1.spawn([CLI_PATH, "invite"]);
    const code = await new Promise<string>((resolve) => {
      let out = "";
      invite.stdout!.on("data", (chunk) => {
        out += chunk;
        const match = /labc join (\S+)/.exec(out);
        if (match) resolve(match[1]!);
      });
    });
    const joined = await h4.cli(["join", "--force", code]);
    expect(joined.stderr).toBe("");
    h4.killAll();
    await sleep(500);
    await h4.serve([h4.service("Back2", { back: 'return "host4 back";' })]);
    await within(15000, "host4 linked again", async () => (await h1.cli(["call", "back"])).stdout === "host4 back\n");
  }, 90_000);
});
