import { rmSync } from "node:fs";

/** Removes the run's own XDG folder (vitest.config.ts) once every test file has ended. */
export function teardown(): void {
  const home = process.env.LABC_TEST_HOME;
  if (home && process.env.LABC_TEST_HOME_PID === String(process.pid)) rmSync(home, { recursive: true, force: true });
}
