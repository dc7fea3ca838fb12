import type { FunctionMetrics, ProcessMetrics } from "../lib/metrics.js";
import type { HostMetrics } from "../lib/wire/router-answers.js";
import { table } from "./format.js";

function micros(us: number): string {
  return us >= 10_000 ? `${(us / 1000).toFixed(0)} ms` : us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} µs`;
}

function errors(f: FunctionMetrics): string {
  const codes = Object.entries(f.byCode).map(([code, n]) => `${code} ${n}`);
  return codes.length ? `${f.errors} (${codes.join(", ")})` : String(f.errors);
}

/** `labc metrics` for a person: functions on both sides, topics, connections; one row per process. */
export function metricsText(metrics: HostMetrics, leaveOut: number): string {
  const processes = metrics.processes.filter((p) => p.pid !== leaveOut && (p.served.length || p.called.length || p.topics.length || p.connections.length));
  const functions = processes.flatMap((p) =>
    (["served", "called"] as const).flatMap((side) =>
      p[side].map((f) => [f.fn, side, String(p.pid), String(f.calls), errors(f), String(f.inFlight), micros(f.p50Us), micros(f.p90Us), micros(f.p99Us)]),
    ),
  );
  const topics = processes.flatMap((p: ProcessMetrics) => p.topics.map((t) => [t.topic, String(p.pid), String(t.published), String(t.delivered)]));
  const connections = processes.map((p) => {
    const sum = (key: "bytesIn" | "bytesOut" | "framesIn" | "framesOut" | "readPauses" | "writeWaits") => p.connections.reduce((total, c) => total + c[key], 0);
    return [String(p.pid), p.id, String(p.connections.length), `${sum("bytesIn")}/${sum("bytesOut")}`, `${sum("framesIn")}/${sum("framesOut")}`, `${sum("readPauses")}/${sum("writeWaits")}`];
  });
  return [
    `${metrics.host} (${metrics.hostId}): ${processes.length} process(es) since they started`,
    "",
    table(["FUNCTION", "SIDE", "PID", "CALLS", "ERRORS", "IN FLIGHT", "P50", "P90", "P99"], functions.sort((a, b) => a[0]!.localeCompare(b[0]!))),
    "",
    table(["TOPIC", "PID", "PUBLISHED", "DELIVERED"], topics.sort((a, b) => a[0]!.localeCompare(b[0]!))),
    "",
    table(["PID", "PROCESS", "CONNECTIONS", "BYTES IN/OUT", "FRAMES IN/OUT", "READ PAUSES/WRITE WAITS"], connections),
  ].join("\n");
}
