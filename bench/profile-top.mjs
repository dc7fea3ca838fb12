// The functions a V8 CPU profile (node --cpu-prof, or bench/w7-rounds.mjs's PROFILE) spent its
// samples in, each by its own time (not counting what it called), as a share of the time the
// process was not idle; then, for the names given, the share with what they called (by name:
// every function of that name together). V8 samples on the wall clock: time the process spent
// waiting for a vCPU lands on the function it was in, so on a busy machine the shares are of
// time, not quite of CPU.
// Usage: node bench/profile-top.mjs FILE.cpuprofile [TOP=40] [NAME...]
import { readFileSync } from "node:fs";

const [file, top = "40", ...names] = process.argv.slice(2);
if (!file || !(Number(top) > 0)) {
  console.error("usage: node bench/profile-top.mjs FILE.cpuprofile [TOP=40] [NAME...]");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8"));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const parents = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
const nameOf = (node) => node.callFrame.functionName || "(anonymous)";
const placeOf = (node) => `${nameOf(node)} ${node.callFrame.url.split("/").slice(-2).join("/")}:${node.callFrame.lineNumber + 1}`;

// µs per node: each sample's time is the delta that follows it.
const spent = new Map();
profile.samples.forEach((id, i) => spent.set(id, (spent.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0)));
let busy = 0;
const own = new Map();
const within = new Map();
for (const [id, us] of spent) {
  const node = nodes.get(id);
  if (nameOf(node) === "(idle)") continue;
  busy += us;
  own.set(placeOf(node), (own.get(placeOf(node)) ?? 0) + us);
  // Counted once per name on the stack, however deep it recurses.
  const seen = new Set();
  for (let at = id; at !== undefined; at = parents.get(at)) seen.add(nameOf(nodes.get(at)));
  for (const name of seen) within.set(name, (within.get(name) ?? 0) + us);
}
const share = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
console.log(`${(busy / 1000).toFixed(0)} ms not idle; own time:`);
for (const [place, us] of [...own].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) console.log(share(us), place);
if (names.length) console.log("with what they called:");
for (const name of names) console.log(share(within.get(name) ?? 0), name);
