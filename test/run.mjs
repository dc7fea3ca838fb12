// `npm test`: every test, the TypeScript suite (vitest) and the Python client's suites
// (clients/python/tests/report.py). The exit code is non-zero when anything failed.
//
// With no arguments, two vitest processes run side by side: one for the files that build hosts
// out of network namespaces (test/netns, mostly waiting on discovery and timers), one for every
// other file (test/unit, test/integration); then the Python suites. One after another they took
// about 16 minutes on 2 vCPUs; side by side, about 11. Each process's output comes through as it
// is written, every line marked with where it came from.
//
// With arguments (`npm test -- test/unit/codec.test.ts`, `-t name`...), vitest runs once with them,
// then the Python suites.
//
// For CI, $LABC_TS_RESULTS names where vitest's JSON report (of both lines) is written, and
// $LABC_PY_RESULTS where report.py writes its counts; .ci/summary.mjs adds them up.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(fileURLToPath(import.meta.url), "..", "..");
const vitestEntry = join(root, "node_modules", "vitest", "vitest.mjs");
const args = process.argv.slice(2);
const children = new Set();
/** A signal came: what has not started yet does not start, and the run fails. */
let stopping = false;

// Ctrl-C, or CI giving up, reaches this process: the children (and the namespaces they hold)
// end with it rather than run on unseen; a second signal ends them at once.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    for (const child of children) child.kill(stopping ? "SIGKILL" : signal);
    stopping = true;
  });
}

/** Runs a command to its end: its exit status. Its output goes through line by line, marked with `tag` when there is one. */
function run(command, commandArgs, { tag, env } = {}) {
  if (stopping) return Promise.resolve(1);
  return new Promise((resolve) => {
    const child = spawn(command, commandArgs, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: tag ? ["ignore", "pipe", "pipe"] : "inherit",
    });
    children.add(child);
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
      children.delete(child);
      console.log(`${tag ?? ""} ${command} did not run: ${error.message}`.trim());
      resolve(1);
    });
    // Its output is read to the end ("close"), but not for long after it exited: a process it
    // started and left running may hold the pipes open.
    child.on("exit", (code, signal) => {
      children.delete(child);
      const status = signal ? 1 : code;
      const late = setTimeout(() => resolve(status), 2000);
      child.on("close", () => {
        clearTimeout(late);
        resolve(status);
      });
    });
  });
}

function python(tag) {
  // Unbuffered: through a pipe, Python's output would come in blocks, and a run that hangs
  // would not show which test it was in.
  return run("python3", [join(root, "clients", "python", "tests", "report.py")], {
    tag,
    env: { PYTHONPATH: join(root, "clients", "python"), PYTHONUNBUFFERED: "1" },
  });
}

// The exit code is set, not exited with: what the children wrote may still be on its way out
// (writes to a pipe, as in CI, complete later on Linux), and process.exit would cut it.
if (args.length > 0) {
  const report = process.env.LABC_TS_RESULTS ? ["--reporter=default", "--reporter=json", `--outputFile.json=${process.env.LABC_TS_RESULTS}`] : [];
  const vitest = await run(process.execPath, [vitestEntry, "run", ...args, ...report]);
  const py = await python();
  process.exitCode = vitest === 0 && py === 0 && !stopping ? 0 : 1;
} else {
  await runAll();
}

/** No arguments: the two vitest processes side by side, then the Python suites. */
async function runAll() {
  const reports = mkdtempSync(join(tmpdir(), "labc-test-reports-"));
  const vitest = (tag, selection) =>
    run(process.execPath, [vitestEntry, "run", ...selection, "--reporter=default", "--reporter=json", `--outputFile.json=${join(reports, `${tag}.json`)}`], {
      tag: `[${tag}]`,
    });
  const [netns, local] = await Promise.all([vitest("netns", ["test/netns"]), vitest("local", ["--exclude=test/netns/**"])]);
  // Alone: some of the Python tests time a reaction to a tenth of a second.
  const py = await python("[python]");

  const merged = mergeReports(reports, [
    { tag: "netns", status: netns },
    { tag: "local", status: local },
  ]);
  rmSync(reports, { recursive: true, force: true });
  // CI's summary (.ci/summary.mjs) reads the report and says the counts; without one, they are said here.
  if (process.env.LABC_TS_RESULTS) writeFileSync(process.env.LABC_TS_RESULTS, JSON.stringify(merged));
  else {
    const brokenFiles = merged.testResults.filter((file) => file.status === "failed" && !file.assertionResults.some((test) => test.status === "failed")).length;
    console.log(`typescript: ${merged.numPassedTests} passed, ${merged.numFailedTests + brokenFiles} failed, ${merged.numPendingTests} skipped`);
  }
  process.exitCode = netns === 0 && local === 0 && py === 0 && !stopping ? 0 : 1;
}

/**
 * vitest's JSON reports of both lines as one. A line that failed without a failed test in its
 * report (no report: vitest did not start or died; or an error outside any test, which vitest's
 * JSON leaves out) counts as a failed file named for the line, so that it cannot pass unseen.
 */
function mergeReports(reports, lines) {
  const merged = { numPassedTests: 0, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0, numTotalTests: 0, success: true, testResults: [] };
  for (const { tag, status } of lines) {
    let report;
    let problem;
    try {
      report = JSON.parse(readFileSync(join(reports, `${tag}.json`), "utf8"));
      if (!Array.isArray(report.testResults)) throw new Error("it has no testResults");
    } catch (error) {
      report = undefined;
      problem = `no vitest report (${error.message}); see the lines marked [${tag}]`;
    }
    if (report) {
      for (const key of ["numPassedTests", "numFailedTests", "numPendingTests", "numTodoTests", "numTotalTests"]) merged[key] += report[key] ?? 0;
      merged.testResults.push(...report.testResults);
      const failedInside = report.testResults.some((file) => file.status === "failed");
      if (status !== 0 && !failedInside) problem = `vitest exited with ${status} and no failed test in its report (an error outside any test?); see the lines marked [${tag}]`;
    }
    if (problem) {
      merged.success = false;
      merged.testResults.push({ name: `[${tag}] vitest`, status: "failed", message: problem, assertionResults: [] });
    }
  }
  merged.success &&= merged.numFailedTests === 0;
  return merged;
}
