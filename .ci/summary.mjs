// Prints vitest's JSON report, plus the Python suites' counts (clients/python/tests/report.py),
// as the one line CI reads, last and plain: "N passed, N failed" (skipped tests, which say why in
// their own output, are counted on the line before).
//   node .ci/summary.mjs .ci/results.json [.ci/python-results.json]
import { readFileSync } from "node:fs";

let report;
try {
  report = JSON.parse(readFileSync(process.argv[2], "utf8"));
} catch (error) {
  console.log(`no test report (${error.message})`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const { numPassedTests: passed, numFailedTests: failed, numPendingTests: skipped = 0, numTodoTests: todo = 0 } = report;
// A file that failed outside its tests (it did not load, or a beforeAll threw: its tests are
// then skipped) has no failed test but did fail.
const brokenFiles = report.testResults.filter(
  (file) => file.status === "failed" && !file.assertionResults.some((test) => test.status === "failed"),
).length;

// CI shows only the last lines of the output: the failed tests are named again here, with the first
// lines of what they said, so that the tail alone tells which failed and why.
for (const file of report.testResults) {
  const failedTests = file.assertionResults.filter((test) => test.status === "failed");
  if (file.status === "failed" && failedTests.length === 0) {
    console.log(`FAILED FILE ${file.name}: ${firstLines(file.message)}`);
  }
  for (const test of failedTests) {
    console.log(`FAILED ${file.name} > ${test.fullName}: ${firstLines((test.failureMessages ?? []).join("\n"))}`);
  }
}

function firstLines(text = "") {
  return String(text).split("\n").slice(0, 6).join("\n    ");
}

let python = { passed: 0, failed: 0, skipped: 0 };
if (process.argv[3]) {
  try {
    python = JSON.parse(readFileSync(process.argv[3], "utf8"));
    for (const name of python.names ?? []) console.log(`FAILED python ${name}`);
    console.log(`typescript: ${passed} passed, ${failed + brokenFiles} failed; python: ${python.passed} passed, ${python.failed} failed`);
  } catch (error) {
    // The Python suites did not run, or stopped before they could say how they went.
    console.log(`no Python test report (${error.message})`);
    python = { passed: 0, failed: 1, skipped: 0 };
  }
}
const allSkipped = skipped + todo + python.skipped;
if (allSkipped > 0) console.log(`${allSkipped} skipped`);
console.log(`${passed + python.passed} passed, ${failed + brokenFiles + python.failed} failed`);
