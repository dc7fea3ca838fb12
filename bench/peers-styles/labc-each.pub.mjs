// labc publisher, each publication awaited before the next (`await labc.publish(...)` in a loop,
// as a script that publishes readings writes it). Runs as bench/shared-peers/labc-each/pub.mjs,
// beside copies of labc's other roles (bench/peers-styles.sh).
import { parseArgs, emit, nowNs, sleep } from '../lib/common.mjs';
import { labc, NAME } from './common.mjs';
const args = parseArgs(undefined, { count: 200000 });
for (let i = 0; i < 50 && (await labc.publish('bench.msg', { s: -1, b: 'probe' })) === 0; i++) await sleep(100);
const t0 = nowNs();
emit({ event: 'pub_start', system: NAME, t0_ns: t0 });
for (let i = 0; i < args.count; i++) await labc.publish('bench.msg', { s: i, b: 'hello' });
emit({ event: 'pub_done', system: NAME, t_done_ns: nowNs(), sent: args.count, pub_side_msgs_per_s: Math.round(args.count / ((nowNs() - t0) / 1e9)) });
await labc.close();
