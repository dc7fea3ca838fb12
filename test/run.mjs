// `npm test`: every test, the TypeScript suite (vitest) and the Python client's suites
// (clients/python/tests/report.py). The exit code is non-zero when anything failed.
//
// With no arguments, two lines of work run side by side: the files that build hosts out of network
// namespaces (test/netns, mostly waiting on discovery and timers), and every other file
// (test/unit, test/integration) followed by the Python suites. One after another they took about 16 minutes
// on 2 vCPUs; side by side they take the longer of the two lines. Each line's output comes
// through as it is written, every line marked with where it came from. For CI,
// $LABC_TS_RESULTS names where vitest's JSON report of both lines is written, and
// $LABC_PY_RESULTS where report.py writes its counts (.ci/summary.mjs adds them up).
//
// With arguments (`npm test -- test/unit/codec.test.ts`, `-t name`...), vitest runs once with them,
// then the Python suites, one after the other as before.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(fileURLToPath(import.meta.url), "..", "..");
const vitestEntry = join(root, "node_modules", "vitest", "vitest.mjs");
const args = process.argv.slice(2);

/** Runs a command; its output goes through line by line, marked with `tag` when there is one. */
function run(command, commandArgs, { tag, env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, commandArgs, {
      cwd: root,
      env: env ?? process.env,
      stdio: tag ? ["ignore", "pipe", "pipe"] : "inherit",
    });
    if (tag) {
      for (const [stream, out] of [[child.stdout, process.stdout], [child.stderr, process.stderr]]) {
        let partial = "";
        stream.setEncoding("utf8");
        stream.on("data", (text) => {
          const lines = (partial + text).split("\n");
          partial = lines.pop();
          if (lines.length > 0) out.write(lines.map((line) => `${tag} ${line}\n`).join(""));
        });
        stream.on("end", () => partial && out.write(`${tag} ${partial}\n`));
      }
    }
    child.on("error", (error) => {
      console.log(`${tag ?? ""} ${command} did not run: ${error.message}`.trim());
      resolve(1);
    });
    child.on("close", (code, signal) => resolve(signal ? 1 : code));
  });
}

function python(tag) {
  return run("python3", [join(root, "clients", "python", "tests", "report.py")], {
    tag,
    env: { ...process.env, PYTHONPATH: join(root, "clients", "python") },
  });
}

if (args.length > 0) {
  const vitest = await run(process.execPath, [vitestEntry, "run", ...args]);
  const py = await python();
  process.exit(vitest === 0 && py === 0 ? 0 : 1);
}

const reports = mkdtempSync(join(tmpdir(), "labc-test-reports-"));
function vitest(tag, selection) {
  return run(
    process.execPath,
    [vitestEntry, "run", ...selection, "--reporter=default", "--reporter=json", `--outputFile.json=${join(reports, `${tag}.json`)}`],
    { tag: `[${tag}]` },
  );
}
const [netns, [local, py]] = await Promise.all([
  vitest("netns", ["test/netns"]),
  vitest("local", ["--exclude=test/netns/**"]).then(async (status) => [status, await python("[python]")]),
]);

const merged = mergeReports(["netns", "local"].map((tag) => join(reports, `${tag}.json`)));
rmSync(reports, { recursive: true, force: true });
// CI's summary (.ci/summary.mjs) reads the report and says the counts; without one, they are said here.
if (process.env.LABC_TS_RESULTS) writeFileSync(process.env.LABC_TS_RESULTS, JSON.stringify(merged));
else console.log(`typescript: ${merged.numPassedTests} passed, ${merged.numFailedTests} failed, ${merged.numPendingTests} skipped (${merged.testResults.length} files)`);
process.exit(netns === 0 && local === 0 && py === 0 ? 0 : 1);

/**
 * vitest's JSON reports of both lines as one. A line whose report is missing (vitest did not
 * start, or died) counts as a failed file, so that it cannot pass unseen.
 */
function mergeReports(files) {
  const merged = { numPassedTests: 0, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0, numTotalTests: 0, success: true, testResults: [] };
  for (const file of files) {
    let report;
    try {
      report = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      merged.success = false;
      merged.testResults.push({ name: file, status: "failed", message: `no vitest report (${error.message})`, assertionResults: [] });
      continue;
    }
    for (const key of ["numPassedTests", "numFailedTests", "numPendingTests", "numTodoTests", "numTotalTests"]) merged[key] += report[key] ?? 0;
    merged.success &&= report.success !== false;
    merged.testResults.push(...report.testResults);
  }
  return merged;
}
