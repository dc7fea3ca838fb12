// labc publisher, fire-and-forget (`void labc.publish(...)`), yielding to the event loop every
// 1000 publications as the harness's NATS publisher does. Runs as
// bench/shared-peers/labc-fire/pub.mjs, beside copies of labc's other roles (bench/peers-styles.sh).
import { parseArgs, emit, nowNs, sleep } from '../lib/common.mjs';
import { labc, NAME } from './common.mjs';
const args = parseArgs(undefined, { count: 200000, batch: 1000 });
for (let i = 0; i < 50 && (await labc.publish('bench.msg', { s: -1, b: 'probe' })) === 0; i++) await sleep(100);
const t0 = nowNs();
emit({ event: 'pub_start', system: NAME, t0_ns: t0 });
for (let i = 0; i < args.count;) {
  const end = Math.min(args.count, i + args.batch);
  for (; i < end; i++) void labc.publish('bench.msg', { s: i, b: 'hello' });
  await new Promise((resolve) => setImmediate(resolve));
}
emit({ event: 'pub_done', system: NAME, t_done_ns: nowNs(), sent: args.count, pub_side_msgs_per_s: Math.round(args.count / ((nowNs() - t0) / 1e9)) });
await labc.close();
