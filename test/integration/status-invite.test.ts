import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { freePort } from "../../lib/net/free-port.js";
import { ECHO, TestHost } from "../helpers.js";

/**
 * "Invite a host" on the status page (POST /api/invite): the router opens an invite as `labc
 * invite` does, for a request from this computer carrying the token; a new host joins with the
 * code the page shows.
 */

let inviter: TestHost;
let joiner: TestHost;
let httpPort: number;
let rootPort: number;
let token: string;

beforeAll(async () => {
  inviter = await TestHost.start();
  joiner = await TestHost.start();
  // This router's root port, with its invite port (the next one) free too, on every interface.
  rootPort = await freePort("0.0.0.0");
  httpPort = await freePort();
  Object.assign(inviter.env, { LABC_ROUTER_PORT: String(rootPort), LABC_HTTP_ENABLED: "true", LABC_HTTP_PORT: String(httpPort) });
  expect((await inviter.cli(["secret", "new"])).code).toBe(0);
  token = (await inviter.cli(["secret", "http-token"])).stdout.trim();
  await inviter.serve([ECHO]);
});
afterAll(async () => {
  const status = JSON.parse((await inviter.cli(["status", "--json"])).stdout || "{}");
  await inviter.cleanup();
  await joiner.cleanup();
  if (status.router?.pid) {
    try {
      process.kill(status.router.pid, "SIGKILL");
    } catch {
      // gone with its last server
    }
  }
});

function invite(action: string, withToken = true) {
  return fetch(`http://127.0.0.1:${httpPort}/api/invite`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-labc": "1", ...(withToken ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ action }),
  });
}

test("the page's invite: the code it shows lets a new host join; it then says who joined", async () => {
  expect((await invite("open", false)).status).toBe(401);
  const opened = await (await invite("open")).json();
  expect(opened.value).toMatchObject({ open: true, join: expect.stringMatching(/^labc join \d{1,2}-[a-z]+-[a-z]+$/) });
  // Asked again, the same invite.
  expect((await (await invite("open")).json()).value.join).toBe(opened.value.join);
  const code = opened.value.join.split(" ")[2];
  const joined = await joiner.cli(["join", code, "--host", `127.0.0.1:${rootPort + 1}`]);
  expect(joined.stderr).toBe("");
  expect(readFileSync(join(joiner.dir, "labc", "secret"), "utf8")).toBe(readFileSync(join(inviter.dir, "labc", "secret"), "utf8"));
  const after = (await (await invite("state")).json()).value;
  expect(after.open).toBe(false);
  expect(after.ended).toMatch(/\(127\.0\.0\.1\) joined the network/);
  const log = readFileSync(join(inviter.dir, "labc", `router-${rootPort}.log`), "utf8");
  expect(log).toMatch(/invite \d+ opened from the status page/);
  expect(log).not.toContain(readFileSync(join(inviter.dir, "labc", "secret"), "utf8").trim());
});

test("the page revokes its invite, and so does `labc invite --revoke`", async () => {
  const first = (await (await invite("open")).json()).value;
  expect(first.open).toBe(true);
  const revoked = (await (await invite("revoke")).json()).value;
  expect(revoked).toMatchObject({ open: false, ended: expect.stringMatching(/revoked \(the status page\)/) });
  expect((await joiner.cli(["join", first.join.split(" ")[2], "--host", `127.0.0.1:${rootPort + 1}`, "--force"])).stderr).toMatch(/\[LABC_NO_INVITE\]/);
  expect((await (await invite("open")).json()).value.open).toBe(true);
  const cli = await inviter.cli(["invite", "--revoke"]);
  expect(cli.stderr).toMatch(/invite \d+ revoked/);
  expect((await (await invite("state")).json()).value.ended).toMatch(/revoked \(labc invite --revoke\)/);
});
