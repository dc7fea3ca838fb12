// Prints vitest's JSON report as the one line CI reads, last and plain: "N passed, N failed"
// (skipped tests, which say why in their own output, are counted on the line before).
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
if (skipped + todo > 0) console.log(`${skipped + todo} skipped`);
console.log(`${passed} passed, ${failed + brokenFiles} failed`);
