// A bench/peers-pinned.sh run as Markdown: for each placement, W1 p50 of each system ÷ its
// counterpart's in the same rep (labc and proto ÷ raw; raw-tls ÷ raw and labc-secret ÷ labc, the
// secret's stage), the median of the reps, and raw's p50.
//   node bench/peers-pinned/summary.mjs OUTDIR/runs.jsonl
import { readFileSync } from 'node:fs';

const PAIRS = [['labc', 'raw'], ['proto', 'raw'], ['raw-tls', 'raw'], ['labc-secret', 'labc']];
const rows = readFileSync(process.argv[2], 'utf8').trim().split('\n').map((line) => JSON.parse(line));
const p50 = (system, rep, placement) => rows.find((r) => r.system === system && r.rep === rep && r.placement === placement)?.result?.p50_us;
const reps = [...new Set(rows.map((r) => r.rep))].sort((a, b) => a - b);
const systems = new Set(rows.map((r) => r.system));
const median = (values) => { const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b); return s.length ? s[(s.length - 1) >> 1] : NaN; };
console.log('| W1 p50, server and client on | pair | per rep | median |');
console.log('|---|---|---|---|');
for (const [placement, label] of [['one', 'one vCPU'], ['two', 'two vCPUs']]) {
  for (const [system, base] of PAIRS.filter(([a, b]) => systems.has(a) && systems.has(b))) {
    const ratios = reps.map((rep) => p50(system, rep, placement) / p50(base, rep, placement));
    console.log(`| ${label} | ${system} ÷ ${base} | ${ratios.map((r) => r.toFixed(2)).join(', ')} | ${median(ratios).toFixed(2)} |`);
  }
  console.log(`| ${label} | raw's p50 (µs) | ${reps.map((rep) => p50('raw', rep, placement)).join(', ')} | |`);
}
