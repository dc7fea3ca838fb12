import { ConnectionLostError, NoSuchFunctionError } from "../errors.js";
import type { Scope } from "../wire/message.js";
import type { CallOptions, Calls } from "./calls.js";
import { JobMap, type MapOptions } from "./job-map.js";
import type { RouterLink } from "./router-link.js";
import { describe, Unreachable } from "./server-links.js";

/** One answer of `callAll`. */
export interface CallAllResult {
  host: string;
  server: string;
  pid: number;
  port: number;
  value?: unknown;
  error?: Error;
}

/** Calls that go to many servers at once: `map` (items spread over them) and `callAll` (each of them). */
export class FanOut {
  constructor(private readonly parts: { link: RouterLink; calls: Calls; defaultScope: Scope; defaultTimeoutMs: number }) {}

  /** See `Runtime.map`. */
  map<T = unknown>(name: string, items: Iterable<unknown>, options: MapOptions & Pick<CallOptions, "scope" | "host"> = {}): JobMap<T> {
    const { link, calls, defaultTimeoutMs } = this.parts;
    const scope = options.scope ?? this.parts.defaultScope;
    const unsent = new WeakSet<object>();
    const servers = () => {
      const all = link.pool.candidates(name, scope, calls.perspective(options.host));
      const well = all.filter((server) => !server.suspect);
      return well.length ? well : all;
    };
    const ready = (async () => {
      await link.sync();
      // On a fresh host, the servers elsewhere may not be known yet: give discovery its moment.
      if (servers().length === 0 && link.discoveringMs > 0) {
        await new Promise((done) => setTimeout(done, link.discoveringMs));
        await link.sync();
      }
    })();
    return new JobMap<T>(name, [...items], options, {
      servers,
      missing: () => new NoSuchFunctionError(name, scope, "no server offers it"),
      call: (server, item, timeoutMs, signal) =>
        calls.sendHooked(server, name, [item], timeoutMs ?? defaultTimeoutMs, signal).catch((error) => {
          if (!(error instanceof Unreachable)) throw error;
          const lost = new ConnectionLostError(describe(server), name, error.cause);
          unsent.add(lost);
          throw lost;
        }),
      idempotent: (server) => server.functions.get(name)?.idempotent === true,
      // A server that was gone, or no longer has the function, did not run it (a NoSuchFunctionError
      // naming another function came from inside it: it ran).
      sent: (error) => !unsent.has(error as object) && !(error instanceof NoSuchFunctionError && error.functionName === name),
    }, ready);
  }

  /** See `Runtime.callAll`. */
  async callAll(name: string, args: unknown[], options: CallOptions = {}): Promise<CallAllResult[]> {
    const { link, calls } = this.parts;
    const scope = options.scope ?? this.parts.defaultScope;
    const timeoutMs = options.timeoutMs ?? this.parts.defaultTimeoutMs;
    await link.sync();
    const from = calls.perspective(options.host);
    const targets = link.pool.candidates(name, scope, from).filter((server) => options.port === undefined || server.port === options.port);
    return Promise.all(
      targets.map(async (target): Promise<CallAllResult> => {
        const result: CallAllResult = { host: target.host, server: target.id, pid: target.pid, port: target.port };
        try {
          result.value = await calls.sendHooked(target, name, args, timeoutMs, options.signal);
        } catch (error) {
          result.error = error as Error;
        }
        return result;
      }),
    );
  }
}
