// Per rep of a bench/peers-tls.sh run: raw-tls ÷ raw and labc-secret ÷ labc, for W1 p50 (lower
// is better) and W2 calls/s (higher is better); then the median of the reps. Markdown on stdout.
//   node bench/peers-tls/ratios.mjs OUTDIR/runs.jsonl
import { readFileSync } from 'node:fs';

const rows = readFileSync(process.argv[2], 'utf8').trim().split('\n').map((line) => JSON.parse(line)).filter((r) => r.event === 'measure');
const value = (system, rep, w, metric) => rows.find((r) => r.system === system && r.rep === rep && r.w === w)?.[metric];
const reps = [...new Set(rows.map((r) => r.rep))].sort((a, b) => a - b);
const median = (values) => { const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b); return s.length ? s[(s.length - 1) >> 1] : NaN; };
const figures = [['W1 p50', 'w1', 'p50_us'], ['W2 calls/s', 'w2', 'calls_per_s']];
console.log('| figure | pair | ' + reps.map((rep) => `rep ${rep}`).join(' | ') + ' | median |');
console.log('|---|---|' + reps.map(() => '---|').join('') + '---|');
for (const [label, w, metric] of figures) {
  for (const [secured, plain] of [['raw-tls', 'raw'], ['labc-secret', 'labc']]) {
    const ratios = reps.map((rep) => value(secured, rep, w, metric) / value(plain, rep, w, metric));
    console.log(`| ${label} | ${secured} ÷ ${plain} | ${ratios.map((r) => r.toFixed(2)).join(' | ')} | ${median(ratios).toFixed(2)} |`);
  }
}
