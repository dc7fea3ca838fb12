import { statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ECHO, TestHost } from "../helpers.js";

let host: TestHost;

beforeAll(async () => {
  host = await TestHost.start();
});
afterAll(() => host.cleanup());

test("labc secret new stores a secret for its owner only, show prints it, and neither repeats nor replaces by accident", async () => {
  const made = await host.cli(["secret", "new"]);
  expect(made.code).toBe(0);
  const file = join(host.dir, "labc", "secret");
  expect(made.stdout).toContain(`the network secret is in ${file} (key id `);
  // How to carry it, never as an argument; `show` prints it, `new` does not.
  expect(made.stdout).toContain("To add a host: `labc invite` here prints a short one-time code, and `labc join <code>` there takes the secret.");
  expect(made.stdout).toContain("Or on every other host of this network: `labc secret show | ssh <host> labc secret set`");
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const shown = await host.cli(["secret", "show"]);
  expect(shown.stdout).toMatch(/^labc1_[\w-]{43}\n$/);
  expect(made.stdout).not.toContain(shown.stdout.trim());
  expect(shown.stderr).toContain(`from ${file}, key id `);
  const again = await host.cli(["secret", "new"]);
  expect(again.code).toBe(2);
  expect(again.stderr).toContain("holds a secret already; `labc secret new --force` replaces it");
  const bad = await host.cliWithInput(["secret", "set", "--force"], "hunter2\n");
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/stdin: network.secret: not a labc network secret/);
  // `labc config` says a secret is set, and never shows it.
  const config = await host.cli(["config"]);
  expect(config.stdout).toMatch(/network\.secret\s+\(set: key id [0-9a-f]{16}\)/);
  expect(config.stdout).not.toContain(shown.stdout.trim());
});

test("with the secret, calls and publications work on one host over TLS; a process with another secret is refused", async () => {
  const served = await host.serve([ECHO]);
  expect(served.stdout()).not.toContain("network is open");
  expect((await host.cli(["call", "echo", "over TLS"])).stdout).toBe("over TLS\n");
  expect((await host.cli(["publish", "echo.said", '"x"'])).code).toBe(0);
  const other = await host.cli(["call", "echo", "x"], { LABC_SECRET: `labc1_${"A".repeat(43)}` });
  expect(other.code).toBe(1);
  expect(other.stderr).toMatch(/refused our network secret \(key id [0-9a-f]{16}\): it has another one \(if one of the two hosts missed a rotation of the secret.*`labc join --force` on it\) \[LABC_NOT_TRUSTED\]/);
  const none = await host.cli(["call", "echo", "x"], { XDG_CONFIG_HOME: join(host.dir, "elsewhere") });
  expect(none.stderr).toMatch(/this host requires the network secret.*\[LABC_NOT_TRUSTED\]/);
});
