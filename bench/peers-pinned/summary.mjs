// A bench/peers-pinned.sh run as Markdown: for each placement, W1 p50 of labc and proto ÷ raw's in
// the same rep, their medians, and raw's p50.   node bench/peers-pinned/summary.mjs OUTDIR/runs.jsonl
import { readFileSync } from 'node:fs';

const rows = readFileSync(process.argv[2], 'utf8').trim().split('\n').map((line) => JSON.parse(line));
const p50 = (system, rep, placement) => rows.find((r) => r.system === system && r.rep === rep && r.placement === placement)?.result?.p50_us;
const reps = [...new Set(rows.map((r) => r.rep))].sort((a, b) => a - b);
const median = (values) => { const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b); return s.length ? s[(s.length - 1) >> 1] : NaN; };
console.log('| W1 p50, server and client on | labc ÷ raw, per rep | median | proto ÷ raw, per rep | median | raw (µs), per rep |');
console.log('|---|---|---|---|---|---|');
for (const [placement, label] of [['one', 'one vCPU'], ['two', 'two vCPUs']]) {
  const cells = ['labc', 'proto'].flatMap((system) => {
    const ratios = reps.map((rep) => p50(system, rep, placement) / p50('raw', rep, placement));
    return [ratios.map((r) => r.toFixed(2)).join(', '), median(ratios).toFixed(2)];
  });
  console.log(`| ${label} | ${cells.join(' | ')} | ${reps.map((rep) => p50('raw', rep, placement)).join(', ')} |`);
}
