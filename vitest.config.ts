import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

// A router that a test's own runtime starts inherits this process's environment, and writes its
// log and state under XDG_STATE_HOME: a folder of the run's own, never the user's home (removed
// by test/global-home.ts when the run ends). One this process made: a parent's is not ours.
if (process.env.LABC_TEST_HOME_PID !== String(process.pid)) {
  process.env.LABC_TEST_HOME = mkdtempSync(join(tmpdir(), "labc-vitest-"));
  process.env.LABC_TEST_HOME_PID = String(process.pid);
}
const home = process.env.LABC_TEST_HOME;

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30000,
    hookTimeout: 30000,
    globalSetup: ["test/global-home.ts"],
    // Outside the network namespaces the tests build, nothing may look beyond loopback.
    env: { LABC_DISCOVERY_ENABLED: "false", XDG_CONFIG_HOME: home, XDG_STATE_HOME: home, XDG_CACHE_HOME: home },
  },
});
