import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30000,
    hookTimeout: 30000,
    // A router that a test's own runtime starts inherits this process's environment: outside the
    // network namespaces the tests build, nothing may look beyond loopback.
    env: { LABC_DISCOVERY_ENABLED: "false" },
  },
});
