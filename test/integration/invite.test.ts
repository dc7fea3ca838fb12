import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { freePort } from "../../lib/net/free-port.js";
import { ECHO, TestHost } from "../helpers.js";

/**
 * `labc invite` and `labc join` on loopback: two simulated hosts (config folders, root ports),
 * the joiner naming the inviter with --host. test/netns/invite.test.ts does it across a LAN.
 */

interface Invite {
  child: ChildProcess;
  code: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `labc invite` on `host`, resolved with its code once it printed it. */
async function invite(host: TestHost, args: string[] = []): Promise<Invite> {
  const child = host.spawn(["invite", "--port", String(rootPort), ...args]);
  let out = "";
  let err = "";
  child.stderr!.on("data", (chunk) => (err += chunk));
  const exited = new Promise<number | null>((done) => child.once("exit", done));
  const code = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (chunk) => {
      out += chunk;
      const match = /labc join (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    exited.then((status) => reject(new Error(`labc invite exited (${status}): ${err}`)));
  });
  return { child, code, stderr: () => err, exited };
}

let inviter: TestHost;
let joiner: TestHost;
/** The inviter's root port in these tests: its next port is the invite's. */
let rootPort: number;
const at = () => `127.0.0.1:${rootPort + 1}`;
const secretOf = (host: TestHost) => readFileSync(join(host.dir, "labc", "secret"), "utf8").trim();

beforeEach(async () => {
  inviter = await TestHost.start();
  joiner = await TestHost.start();
  // With its invite port (the next one) free too, on every interface the inviter listens on.
  rootPort = await freePort("0.0.0.0");
  expect((await inviter.cli(["secret", "new"])).code).toBe(0);
});
afterEach(async () => {
  await inviter.cleanup();
  await joiner.cleanup();
});

describe("labc invite / labc join on loopback", () => {
  test("the right code: the joiner stores the inviter's secret (0600), both say so, nobody prints the secret", async () => {
    const open = await invite(inviter);
    expect(open.code).toMatch(/^\d{1,2}-[a-z]+-[a-z]+$/);
    const joined = await joiner.cli(["join", open.code, "--host", at()]);
    expect(joined.stderr).toBe("");
    expect(joined.code).toBe(0);
    const secret = secretOf(inviter);
    expect(secretOf(joiner)).toBe(secret);
    expect(statSync(join(joiner.dir, "labc", "secret")).mode & 0o777).toBe(0o600);
    expect(joined.stdout).toMatch(/joined the network of .* at 127\.0\.0\.1: the network secret is in .*secret \(key id [0-9a-f]{16}\)/);
    expect(joined.stdout).toMatch(/No labc process runs on this host yet: the next one starts with the secret/);
    expect(await open.exited).toBe(0);
    expect(open.stderr()).toMatch(/invite \d+ is open until \d\d:\d\d for one host.*Ctrl-C or `labc invite --revoke` ends the invite/s);
    expect(open.stderr()).toMatch(/\(127\.0\.0\.1\) joined the network/);
    for (const text of [joined.stdout, joined.stderr, open.stderr()]) expect(text).not.toContain(secret);
    // One use: its file is gone, and its port is closed.
    expect(existsSync(join(inviter.dir, "labc", `invite-${rootPort + 1}.json`))).toBe(false);
    const again = await joiner.cli(["join", open.code, "--host", at(), "--force"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no invite is open there.*\[LABC_NO_INVITE\]/);
    // The joined host talks with the secret: its config shows the same key id.
    const keyId = /key id ([0-9a-f]{16})/.exec(joined.stdout)![1];
    expect((await inviter.cli(["config"])).stdout).toContain(`(set: key id ${keyId})`);
  });

  test("a joining host whose router runs without the secret is told which processes to restart", async () => {
    const open = await invite(inviter);
    await joiner.serve([ECHO]);
    const routerPid = await joiner.routerPid();
    const joined = await joiner.cli(["join", open.code, "--host", at()]);
    expect(joined.code).toBe(0);
    expect(joined.stdout).toContain(`This host's router (pid ${routerPid}) and the labc processes linked to it (\`labc status\` lists them) run without the secret`);
    expect(joined.stdout).toContain(`then the router (\`kill ${routerPid}\`)`);
  });

  test("a wrong code is refused and spends the invite: the right code then finds none", async () => {
    const open = await invite(inviter);
    const [number, first, second] = open.code.split("-");
    const wrong = `${number}-${second === "zebra" ? "zoom" : "zebra"}-${first}`;
    const refused = await joiner.cli(["join", wrong, "--host", at()]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the code does not match the invite open there.*that invite is now spent.*\[LABC_WRONG_CODE\]/);
    expect(existsSync(join(joiner.dir, "labc", "secret"))).toBe(false);
    expect(await open.exited).toBe(1);
    expect(open.stderr()).toMatch(/tried invite \d+ with a wrong code: the invite is spent/);
    const late = await joiner.cli(["join", open.code, "--host", at()]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/\[LABC_NO_INVITE\]/);
    expect(existsSync(join(joiner.dir, "labc", "secret"))).toBe(false);
  });

  test("an expired code is refused", async () => {
    const open = await invite(inviter, ["--valid", "1s"]);
    expect(await open.exited).toBe(1);
    expect(open.stderr()).toMatch(/invite \d+ expired unused/);
    const late = await joiner.cli(["join", open.code, "--host", at()]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/no invite is open there \(it expired, was revoked or used.*\[LABC_NO_INVITE\]/);
  });

  test("labc invite --revoke ends the open invite; its code is then refused", async () => {
    const open = await invite(inviter);
    const revoked = await inviter.cli(["invite", "--revoke", "--port", String(rootPort)]);
    expect(revoked.code).toBe(0);
    expect(revoked.stderr).toMatch(/invite \d+ revoked/);
    expect(await open.exited).toBe(1);
    expect(open.stderr()).toMatch(/revoked \(labc invite --revoke\); nobody joined/);
    const late = await joiner.cli(["join", open.code, "--host", at()]);
    expect(late.stderr).toMatch(/\[LABC_NO_INVITE\]/);
    const none = await inviter.cli(["invite", "--revoke", "--port", String(rootPort)]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no invite is open on this host/);
  });

  test("Ctrl-C revokes the invite (exit 130)", async () => {
    const open = await invite(inviter);
    open.child.kill("SIGINT");
    expect(await open.exited).toBe(130);
    expect(open.stderr()).toMatch(/revoked \(interrupted\)/);
    expect((await joiner.cli(["join", open.code, "--host", at()])).stderr).toMatch(/\[LABC_NO_INVITE\]/);
  });

  test("what is refused before anything is sent leaves the invite open: a misspelt word, a secret held already", async () => {
    const open = await invite(inviter);
    const typo = await joiner.cli(["join", `${open.code.split("-")[0]}-qqqq-${open.code.split("-")[2]}`, "--host", at()]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/the first word of the code is not one of the words invites use/);
    expect(typo.stderr).not.toContain("qqqq");
    expect((await joiner.cli(["secret", "new"])).code).toBe(0);
    const held = await joiner.cli(["join", open.code, "--host", at()]);
    expect(held.code).toBe(2);
    expect(held.stderr).toMatch(/holds a network secret already \(key id [0-9a-f]{16}\): `labc join --force` replaces it/);
    // Still open: the code typed at the prompt (stdin), with --force.
    const joined = await joiner.cliWithInput(["join", "--host", at(), "--force"], `${open.code.toUpperCase().replace(/-/g, " ")}\n`);
    expect(joined.code).toBe(0);
    expect(secretOf(joiner)).toBe(secretOf(inviter));
    expect(await open.exited).toBe(0);
  });

  test("an open host has nothing to hand over; a second invite on the same port is refused with what holds it", async () => {
    const open = await joiner.cli(["invite"]);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/this host has no network secret.*`labc secret new` makes one/);
    const first = await invite(inviter);
    const second = await inviter.cli(["invite", "--port", String(rootPort)]);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(new RegExp(`invite ${first.code.split("-")[0]} is open on this host until .*\`labc invite --revoke\``));
    first.child.kill("SIGINT");
    await first.exited;
  });
});
