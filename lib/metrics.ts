import { nowMs } from "./clock.js";

/**
 * What a process did, counted as it happens and read only when asked (`labc metrics`, through
 * the host's router: no steady chatter): per function, on the serving and the calling side,
 * calls, errors by code, calls in flight and a latency histogram; per topic, publications and
 * deliveries; per connection, bytes, frames and backpressure pauses (kept by each Connection).
 */

/** Latencies in µs, log-linear: exact below 8 µs, then 8 buckets per power of two (about 12 % wide). */
export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  count = 0;

  add(us: number): void {
    this.counts[bucketOf(us)]!++;
    this.count++;
  }

  /** The latency under which a fraction `q` of the samples fell (a bucket's upper bound), in µs. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return upperBound(i);
    }
    return upperBound(BUCKETS - 1);
  }
}

const BUCKETS = 240;

function bucketOf(us: number): number {
  const v = us >= 2 ** 31 ? 2 ** 31 - 1 : Math.floor(us);
  if (v < 8) return v < 0 ? 0 : v;
  const exponent = 31 - Math.clz32(v);
  return (exponent - 2) * 8 + ((v >>> (exponent - 3)) & 7);
}

function upperBound(bucket: number): number {
  if (bucket < 8) return bucket + 1;
  const exponent = (bucket >> 3) + 2;
  return ((8 + (bucket & 7) + 1) << (exponent - 3));
}

/**
 * One call in this many is timed: reading the clock twice costs 150–200 ns on a slow machine, 3 %
 * of a call's CPU at 100 in flight, and the quantiles of a quarter of the calls are the same.
 */
const TIMED_ONE_IN = 4;

/** One function's calls, on one side (serving or calling). */
export class CallStats {
  calls = 0;
  errors = 0;
  inFlight = 0;
  private started = 0;
  readonly byCode = new Map<string, number>();
  readonly latency = new Histogram();

  /**
   * A call starts: returns its start time for `end` when this call is one of those timed (the
   * caller's own reading of the clock, `now`, when it has one), else 0.
   */
  begin(now?: number): number {
    this.inFlight++;
    if (++this.started % TIMED_ONE_IN !== 0) return 0;
    return now ?? nowMs();
  }

  end(startedAt: number, error?: unknown): void {
    this.inFlight--;
    this.calls++;
    if (startedAt !== 0) this.latency.add((nowMs() - startedAt) * 1000);
    if (error === undefined) return;
    this.errors++;
    const code = errorCode(error);
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
  }
}

/** A labc error's code, a thrown error's own code, else its class name (the remote one's, for a remote error). */
function errorCode(error: unknown): string {
  const { code, remoteCode, remoteName, name } = (error ?? {}) as { code?: unknown; remoteCode?: unknown; remoteName?: unknown; name?: unknown };
  if (code === "LABC_REMOTE_ERROR") return typeof remoteCode === "string" ? remoteCode : typeof remoteName === "string" ? remoteName : "Error";
  if (typeof code === "string") return code;
  return typeof name === "string" ? name : "Error";
}

export interface TopicStats {
  published: number;
  delivered: number;
}

/** No topic counted yet (not `undefined`, which a JavaScript caller may pass). */
const NONE = Symbol("none");

/** Distinct topics counted one by one; past these, the rest are counted together. */
const MAX_TOPICS = 1000;
const OTHER_TOPICS = "(other topics)";

/** What `labc.metrics` answers for one process. */
export interface ProcessMetrics {
  pid: number;
  id: string;
  served: FunctionMetrics[];
  called: FunctionMetrics[];
  topics: ({ topic: string } & TopicStats)[];
  connections: ConnectionMetrics[];
}

export interface FunctionMetrics {
  fn: string;
  calls: number;
  errors: number;
  /** Errors by code (a labc code, or the thrown error's own code or class). */
  byCode: Record<string, number>;
  inFlight: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
}

export interface ConnectionMetrics {
  peer: string;
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
  /** Times this side stopped reading the peer (too many of its requests waiting, or its answers unread). */
  readPauses: number;
  /** Times a sender here waited for the peer to read what was queued for it. */
  writeWaits: number;
}

/** What a Connection counts of itself. */
export interface Metered {
  readonly label: string;
  readonly traffic: Omit<ConnectionMetrics, "peer">;
}

export class Metrics {
  readonly served = new Map<string, CallStats>();
  readonly called = new Map<string, CallStats>();
  readonly topics = new Map<string, TopicStats>();
  /** The topic counted last and its counts: a stream publishes one topic over and over (entries are never removed). */
  private lastTopic: string | typeof NONE = NONE;
  private lastStats: TopicStats | undefined;
  readonly connections = new Set<Metered>();

  servedStats(fn: string): CallStats {
    let stats = this.served.get(fn);
    if (!stats) this.served.set(fn, (stats = new CallStats()));
    return stats;
  }

  calledStats(fn: string): CallStats {
    let stats = this.called.get(fn);
    if (!stats) this.called.set(fn, (stats = new CallStats()));
    return stats;
  }

  private topic(topic: string): TopicStats {
    if (topic === this.lastTopic) return this.lastStats!;
    let stats = this.topics.get(topic);
    if (!stats) {
      const key = this.topics.size >= MAX_TOPICS ? OTHER_TOPICS : topic;
      stats = this.topics.get(key);
      if (!stats) this.topics.set(key, (stats = { published: 0, delivered: 0 }));
    }
    this.lastTopic = topic;
    this.lastStats = stats;
    return stats;
  }

  published(topic: string): void {
    this.topic(topic).published++;
  }

  delivered(topic: string, count: number): void {
    if (count > 0) this.topic(topic).delivered += count;
  }

  snapshot(id: string): ProcessMetrics {
    const functions = (stats: Map<string, CallStats>) =>
      [...stats].map(([fn, s]) => ({
        fn,
        calls: s.calls,
        errors: s.errors,
        byCode: Object.fromEntries(s.byCode),
        inFlight: s.inFlight,
        p50Us: s.latency.quantile(0.5),
        p90Us: s.latency.quantile(0.9),
        p99Us: s.latency.quantile(0.99),
      }));
    return {
      pid: process.pid,
      id,
      served: functions(this.served),
      called: functions(this.called),
      topics: [...this.topics].map(([topic, s]) => ({ topic, ...s })),
      connections: [...this.connections].map((connection) => ({ peer: connection.label, ...connection.traffic })),
    };
  }
}

/** The process's metrics: every runtime, server and connection of the process counts here. */
export const processMetrics = new Metrics();

/** The name a process answers its router's request for its metrics under (and a router, for its host's). */
export const METRICS_FN = "labc.metrics";
/** A router's function answering every linked host's metrics. */
export const NETWORK_METRICS_FN = "labc.metrics.network";
