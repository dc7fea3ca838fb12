// `npm test`: the TypeScript suite (vitest, given npm test's arguments), then the Python client's
// suites (clients/python/tests/report.py, which writes its counts where $LABC_PY_RESULTS says, for
// .ci/summary.mjs). Both always run; the exit code is non-zero when either failed.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(fileURLToPath(import.meta.url), "..", "..");
const vitest = spawnSync(process.execPath, [join(root, "node_modules", "vitest", "vitest.mjs"), "run", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
});
const python = spawnSync("python3", [join(root, "clients", "python", "tests", "report.py")], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, PYTHONPATH: join(root, "clients", "python") },
});
if (python.error) console.log(`the Python suites did not run: ${python.error.message}`);
process.exit(vitest.status === 0 && python.status === 0 ? 0 : 1);
