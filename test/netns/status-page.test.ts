import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { Lan, lanUnavailable, within, type LanHost } from "./lan.js";

/**
 * The status page in headless Chromium (Debian's `chromium`, driven by playwright-core), on the
 * first of two namespace hosts of a network with a secret: the page acts on the other host as
 * `labc start-service --host` would. Its screenshots go to docs/ when LABC_SCREENSHOTS=1.
 */

const CHROMIUM = "/usr/bin/chromium";
const HTTP_PORT = 55580;

function browserUnavailable(): string | undefined {
  if (!existsSync(CHROMIUM)) return `no ${CHROMIUM} (apt-get install chromium)`;
  try {
    createRequire(import.meta.url).resolve("playwright-core");
  } catch {
    return "no playwright-core (npm install)";
  }
  return undefined;
}

const why = lanUnavailable() ?? browserUnavailable();
if (why) console.warn(`status page tests skipped: ${why}`);

let lan: Lan;
let h1: LanHost;
let h2: LanHost;
let browser: import("playwright-core").Browser;
let page: import("playwright-core").Page;
let wrapperDir: string;
let token: string;

/** The page's views, kept in docs/ for the documentation when asked. */
async function screenshot(name: string): Promise<void> {
  const file = join(wrapperDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (process.env.LABC_SCREENSHOTS === "1") copyFileSync(file, join(PACKAGE_ROOT, "docs", "images", `${name}.png`));
}

describe.skipIf(why)("the status page in Chromium, 2 hosts in network namespaces with a network secret", () => {
  beforeAll(async () => {
    lan = Lan.create(2, { LABC_SECRET: `labc1_${randomBytes(32).toString("base64url")}` });
    [h1, h2] = lan.hosts as [LanHost, LanHost];
    expect((await h2.cli(["install", join(PACKAGE_ROOT, "services", "light-control.ts")])).stderr).toBe("");
    // Beyond loopback: the network has a secret, so other computers may come with its token.
    await h1.serve([join(PACKAGE_ROOT, "services", "echo.ts")], { LABC_HTTP_ENABLED: "true", LABC_HTTP_PORT: String(HTTP_PORT), LABC_HTTP_ADDRESS: "0.0.0.0" });
    await h2.serve([h2.service("Two", { on_host2: 'return "host2";' })]);
    await within(8000, "the hosts linked", async () => (await h1.hosts()).filter((h) => h.functions > 0).length === 2);
    // With a secret, the page asks for its token on this computer too (another user of it cannot read the secret).
    token = (await h1.cli(["secret", "http-token"])).stdout.trim();

    // Chromium runs in host1's namespace, where the router's endpoint is 127.0.0.1.
    wrapperDir = mkdtempSync(join(tmpdir(), "labc-chromium-"));
    const wrapper = join(wrapperDir, "chromium");
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${h1.ns} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: wrapper,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // A wait that fails names what it waited for, well before the test's own timeout.
    page.setDefaultTimeout(8000);
    await page.goto(`http://127.0.0.1:${HTTP_PORT}/#token=${token}`);
  }, 90000);
  afterAll(async () => {
    await browser?.close();
    lan?.cleanup();
    if (wrapperDir) rmSync(wrapperDir, { recursive: true, force: true });
  });

  test("the page shows both hosts alive, the servers with their functions and each host's services, live", async () => {
    await page.locator('tr[data-host="host2"][data-state="alive"]').waitFor({ timeout: 10000 });
    await page.locator('tr[data-host="host1"][data-state="self"]').waitFor();
    // A method's short name shows beside its full one.
    await page.locator('tr[data-function="echo.echo"][data-alias="echo"]').waitFor();
    await page.locator('tr[data-function="two.on_host2"]').waitFor();
    await page.locator('tr[data-service="LightControl"][data-state="stopped"]').waitFor();
    expect(await page.locator("#live").textContent()).toBe("live");
    await screenshot("status-page");
  });

  test("start on a service of the other host starts it, and its functions appear", async () => {
    await page.locator('tr[data-service="LightControl"] button[data-action="start"]').click();
    await page.locator('tr[data-service="LightControl"][data-state="running"]').waitFor({ timeout: 20000 });
    await page.locator('tr[data-function="light_control.set"]').waitFor({ timeout: 5000 });
    expect(await page.locator('tr[data-service="LightControl"] [data-result]').textContent()).toBe("start: running");
  });

  test("a call from the page shows its result, and a typed error its code; a publication shows in the tap", async () => {
    await page.fill('#tap-form input[name="pattern"]', "lights.#");
    await page.click("#tap-button");
    await page.locator("#tap-state", { hasText: "tapping lights.#" }).waitFor();

    await page.fill('#call-form input[name="fn"]', "light_control.set");
    await page.fill('#call-form input[name="args"]', '["desk", 55]');
    await page.click("#call-form button");
    await page.locator("#call-result", { hasText: /^55$/ }).waitFor();
    // LightControl publishes each change: it crossed from host2 into the tap on host1.
    const tapped = page.locator('#tap-messages div[data-topic="lights.changed.desk"]');
    await tapped.waitFor();
    expect(await tapped.textContent()).toContain('[{"channel":"desk","level":55}]');

    await page.fill('#publish-form input[name="topic"]', "lights.note");
    await page.fill('#publish-form input[name="args"]', '["from the page"]');
    await page.click("#publish-form button");
    await page.locator('#tap-messages div[data-topic="lights.note"]', { hasText: "from the page" }).waitFor();
    expect(await page.locator("#publish-result").textContent()).toMatch(/^reached \d+ server\(s\)$/);

    await page.fill('#call-form input[name="fn"]', "light_control.set");
    await page.fill('#call-form input[name="args"]', '["attic", 5]');
    await page.click("#call-form button");
    // What the function threw, by its class, with where it ran.
    await page.locator("#call-result.error", { hasText: /^RangeError: light_control\.set on server \w+ on host2 .*: no light "attic"/ }).waitFor();
    await page.fill('#call-form input[name="fn"]', "nowhere");
    await page.fill('#call-form input[name="args"]', "[]");
    await page.click("#call-form button");
    await page.locator("#call-result.error", { hasText: "LABC_NO_SUCH_FUNCTION" }).waitFor();
    // The server's figures, from its metrics: two calls of light_control.set, one failed.
    await page.locator('tr[data-function="light_control.set"][data-calls="2"][data-errors="1"]').waitFor();
    await screenshot("status-page-actions");
  });

  test("restart and stop from the page: the service gets a new process, then leaves with its functions", async () => {
    const row = page.locator('tr[data-service="LightControl"]');
    const pid = Number(await row.locator("td").nth(2).textContent());
    await row.locator('button[data-action="restart"]').click();
    await page.locator('tr[data-service="LightControl"] [data-result]', { hasText: "restart: running" }).waitFor({ timeout: 20000 });
    await within(3000, "a new pid on the page", async () => Number(await row.locator("td").nth(2).textContent()) !== pid);
    await row.locator('button[data-action="stop"]').click();
    await page.locator('tr[data-service="LightControl"][data-state="stopped"]').waitFor({ timeout: 20000 });
    await page.locator('tr[data-function="light_control.set"]').waitFor({ state: "detached" });
  });

  test("the endpoint refuses an action from another site's page, and a request naming another Host", async () => {
    const status = await page.evaluate(async ([port, token]) => {
      const action = (headers: Record<string, string>) =>
        fetch(`http://127.0.0.1:${port}/api/call`, { method: "POST", headers: { ...headers, authorization: `Bearer ${token}` }, body: JSON.stringify({ fn: "echo", args: [1] }) }).then((r) => r.status);
      return { plain: await action({ "content-type": "text/plain" }), own: await action({ "content-type": "application/json", "x-labc": "1" }) };
    }, [HTTP_PORT, token] as const);
    expect(status).toEqual({ plain: 403, own: 200 });
    const foreign = await h1.node(["-e", `fetch("http://127.0.0.1:${HTTP_PORT}/api/call", { method: "POST", headers: { origin: "http://evil.example", "content-type": "application/json", "x-labc": "1", authorization: "Bearer ${token}" }, body: "{}" }).then(async (r) => console.log(r.status, await r.text()))`]);
    expect(foreign.stdout).toMatch(/^403 requests from pages of http:\/\/evil\.example are refused/);
    // A name of another site that resolves to 127.0.0.1 (DNS rebinding): fetch cannot set Host, http can.
    const rebound = await h1.node(["-e", `require("node:http").get({ port: ${HTTP_PORT}, path: "/api/status", headers: { host: "evil.example:${HTTP_PORT}" } }, (r) => console.log(r.statusCode))`]);
    expect(rebound.stdout.trim()).toBe("403");
  });

  test("on this computer without the token, the page says it is refused and which command gives the token", async () => {
    const bare = await browser.newPage();
    try {
      await bare.goto(`http://127.0.0.1:${HTTP_PORT}/`);
      await bare.locator("#live", { hasText: /^refused: this router's network has a secret, .*`labc secret http-token`/ }).waitFor();
    } finally {
      await bare.close();
    }
  });

  test("from another computer: refused without the network's token, the page and its actions with it", async () => {
    const printed = await h1.cli(["secret", "http-token"]);
    expect(printed.stdout.trim()).toBe(token);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(printed.stderr).toContain(`http://127.0.0.1:${HTTP_PORT}/#token=${token}`);
    expect(printed.stderr).toContain(`http://host1:${HTTP_PORT}/#token=${token}`);
    const fromHost2 = async (path: string, headers: Record<string, string> = {}) =>
      (await h2.node(["-e", `fetch("http://${h1.address}:${HTTP_PORT}${path}", { headers: ${JSON.stringify(headers)} }).then(async (r) => console.log(r.status, (await r.text()).slice(0, 60)))`])).stdout;
    expect(await fromHost2("/api/status")).toMatch(/^401 a request from another computer needs the network's token/);
    expect(await fromHost2("/api/status", { authorization: `Bearer ${"x".repeat(43)}` })).toMatch(/^401 /);
    expect(await fromHost2(`/api/events?token=${token.slice(1)}x`)).toMatch(/^401 /);
    expect(await fromHost2("/metrics", { authorization: `Bearer ${token}` })).toMatch(/^200 # HELP labc_calls_total/);
    expect(await fromHost2("/")).toMatch(/^200 <!doctype html>/);

    // The page from host1's LAN address (not loopback), the token given once in its address.
    const remote = await browser.newPage();
    try {
      remote.setDefaultTimeout(8000);
      await remote.goto(`http://${h1.address}:${HTTP_PORT}/#token=${token}`);
      await remote.locator('tr[data-host="host2"][data-state="alive"]').waitFor();
      expect(remote.url()).toBe(`http://${h1.address}:${HTTP_PORT}/`);
      await remote.fill('#call-form input[name="fn"]', "add");
      await remote.fill('#call-form input[name="args"]', "[20, 22]");
      await remote.click("#call-form button");
      await remote.locator("#call-result", { hasText: /^42$/ }).waitFor();
    } finally {
      await remote.close();
    }
  });

  test("a host killed turns dead on the page within the detection time", async () => {
    const started = Date.now();
    h2.killAll();
    await page.locator('tr[data-host="host2"][data-state="dead"]').waitFor({ timeout: 10000 });
    // Detection: 4 heartbeats of 0.5 s missed (network.dead_after, network.heartbeat), then the page's next second.
    expect(Date.now() - started).toBeLessThan(6000);
    await screenshot("status-page-dead-host");
  });
});
