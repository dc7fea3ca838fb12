// The status page's view, live events, tap and actions, made by the router's own Runtime.
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { BadArgumentsError, NotPermittedError, type RemoteError } from "../lib/errors.js";
import type { Asker } from "../lib/router/http-endpoint.js";
import type { HostInfo } from "../lib/wire/router-answers.js";
import type { HostMetrics } from "../lib/wire/router-answers.js";
import type { FunctionEntry } from "../lib/wire/message.js";
import type { Runtime, Unsubscribe } from "../lib/runtime/runtime.js";
import type { ServiceInfo } from "../lib/services/supervisor.js";
import { PACKAGE_ROOT } from "../lib/paths.js";
import { toJson } from "./format.js";
import { callFromAfar, serviceFromAfar, viewFromAfar } from "./from-afar.js";
import type { FunctionView, ServerView, ServicesView, StatusView } from "./status-view.js";

export type { FunctionView, ServerView, ServicesView, StatusView };

/**
 * The status page of the router's HTTP endpoint (docs/observability.md#the-status-page): the
 * page itself (lib/status-page.html, no build step, nothing fetched from elsewhere), the live
 * view it reads as server-sent events, and its actions. Every action is made by the router's own
 * labc process, as `labc call`, `labc publish` and `labc start-service` make them: the same
 * functions, with the same permissions; for a request from another computer, as for a caller on
 * another host (cli/from-afar.ts).
 */

/** How often the view is sent while a page watches it; nothing is gathered while none does. */
const TICK_MS = 1000;
/** Calls the view makes to other hosts (services, logs) give up after this. */
const ASK_MS = 2000;
/** At most this many taps at once, and this much unsent to a slow page before a tap drops. */
const MAX_TAPS = 16;
const TAP_UNSENT_BYTES = 1 << 20;
/** A request body of an action is small: a call's arguments, a topic. */
const MAX_BODY_BYTES = 1 << 20;
const LOG_TAIL_BYTES = 2048;
const LOG_LINES = 5;

export class StatusBoard {
  /** Each page watching the view, and who asks through it. */
  private readonly watchers = new Map<ServerResponse, Asker>();
  private readonly taps = new Set<Unsubscribe>();
  private timer: NodeJS.Timeout | undefined;
  /** Each function's calls at the view before, for its rate: `hostId pid fn` → calls, time. */
  private previous = new Map<string, { calls: number; at: number }>();
  private page: string | undefined;
  /** A view is being gathered: a slow round (a host not answering) is not piled on. */
  private sending = false;

  constructor(
    private readonly runtime: Runtime,
    private readonly options: {
      host: string;
      networkMetrics: () => Promise<HostMetrics[]>;
      /** POST /api/invite: "invite a host" (cli/invite-desk.ts). */
      invite?: (body: Record<string, unknown>, far: boolean) => Promise<unknown>;
    },
  ) {}

  /** Answers the request if it is the page's; false for any other path. */
  handle(request: IncomingMessage, response: ServerResponse, path: string, asker: Asker): boolean {
    const get = request.method === "GET" || request.method === "HEAD";
    if (path === "/" && get) {
      // The build copies it beside the bundles (the package holds no lib/).
      this.page ??= readFileSync(join(PACKAGE_ROOT, "dist", "status-page.html"), "utf8");
      response.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(this.page);
    } else if (path === "/api/status" && get) {
      this.view().then((view) => sendJson(response, 200, this.viewFor(asker, view)), (error) => sendError(response, error));
    } else if (path === "/api/events" && get) this.watch(response, asker);
    else if (path === "/api/tap" && get) this.tap(request, response);
    else if (path.startsWith("/api/") && request.method === "POST") this.act(request, response, path, asker);
    else return false;
    return true;
  }

  /** Stops the live view and every tap (their responses end with the endpoint). */
  close(): void {
    clearInterval(this.timer);
    for (const unsubscribe of this.taps) void unsubscribe();
  }

  /** The live view as server-sent events: one now, then one a second while the page is open. */
  private watch(response: ServerResponse, asker: Asker): void {
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    this.watchers.set(response, asker);
    response.once("close", () => {
      this.watchers.delete(response);
      if (this.watchers.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    void this.broadcast();
    this.timer ??= setInterval(() => void this.broadcast(), TICK_MS);
  }

  private async broadcast(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      const view = await this.view();
      const events = new Map<Asker, string>();
      for (const [watcher, asker] of this.watchers) {
        let event = events.get(asker);
        if (event === undefined) events.set(asker, (event = `event: status\ndata: ${toJson(this.viewFor(asker, view))}\n\n`));
        watcher.write(event);
      }
    } catch (error) {
      for (const watcher of this.watchers.keys()) watcher.write(`event: failure\ndata: ${JSON.stringify((error as Error).message)}\n\n`);
    } finally {
      this.sending = false;
    }
  }

  /** Hosts, servers with their functions' figures, and every host's installed services. */
  async view(): Promise<StatusView> {
    const [hosts, metrics] = await Promise.all([this.runtime.hosts(), this.options.networkMetrics().catch(() => [])]);
    const now = Date.now();
    const served = new Map<string, { calls: number; errors: number; p99Us: number }>();
    for (const host of metrics) {
      for (const process of host.processes) {
        for (const f of process.served) served.set(`${host.hostId} ${process.pid} ${f.fn}`, f);
      }
    }
    const previous = this.previous;
    this.previous = new Map();
    const servers: ServerView[] = [...this.runtime.admin.pool.servers.values()].map((server) => ({
      id: server.id,
      host: server.host,
      hostId: server.hostId,
      pid: server.pid,
      port: server.port,
      ...(server.state === undefined ? {} : { state: server.state }),
      suspect: server.suspect,
      topics: [...server.topics],
      functions: aliased([...server.functions.values()]).map(({ entry, alias }) => {
        const names = alias === undefined ? [entry.name] : [entry.name, alias];
        const figures = { calls: 0, errors: 0, rate: 0, p99Us: 0 };
        for (const name of names) {
          const key = `${server.hostId} ${server.pid} ${name}`;
          const counted = served.get(key) ?? { calls: 0, errors: 0, p99Us: 0 };
          const before = previous.get(key);
          this.previous.set(key, { calls: counted.calls, at: now });
          figures.calls += counted.calls;
          figures.errors += counted.errors;
          figures.p99Us = Math.max(figures.p99Us, counted.p99Us);
          if (before && now > before.at) figures.rate += ((counted.calls - before.calls) * 1000) / (now - before.at);
        }
        return { name: entry.name, ...(alias === undefined ? {} : { alias }), scope: entry.scope, visibility: entry.visibility, ...figures };
      }),
    }));
    const reachable = hosts.filter((host) => host.state === "self" || host.state === "alive");
    const services = await Promise.all(reachable.map((host) => this.servicesOf(host)));
    return { host: this.options.host, at: now, hosts, servers, services };
  }

  private viewFor(asker: Asker, view: StatusView): StatusView {
    return asker === "this computer" ? view : viewFromAfar(this.runtime, view);
  }

  private async servicesOf(host: HostInfo): Promise<ServicesView> {
    const handle = this.runtime.getHost(host.hostId);
    const ask = <T>(fn: string, args: unknown[]) => handle.callWith<T>(`service_control.${fn}`, args, { timeoutMs: ASK_MS });
    try {
      const services = await ask<ServiceInfo[]>("listServices", []);
      const withLogs = await Promise.all(
        services.map(async (service) => {
          const log = await ask<{ text: string }>("serviceLogs", [service.name, -LOG_TAIL_BYTES]).then(
            ({ text }) => text.split("\n").filter((line) => line !== "").slice(-LOG_LINES),
            () => [],
          );
          return { ...service, log };
        }),
      );
      return { host: host.name, hostId: host.hostId, services: withLogs };
    } catch (error) {
      return { host: host.name, hostId: host.hostId, error: (error as Error).message };
    }
  }

  /** Every publication on a pattern, as it passes, until the page closes the tap. */
  private tap(request: IncomingMessage, response: ServerResponse): void {
    const pattern = new URL(request.url ?? "/", "http://labc").searchParams.get("pattern") ?? "";
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    // A refusal is an event too, so that the page's EventSource shows it instead of retrying.
    const refuse = (error: unknown) => {
      const { code, message } = error as { code?: string; message: string };
      response.end(`event: failure\ndata: ${JSON.stringify({ code: code ?? null, message })}\n\n`);
    };
    if (this.taps.size >= MAX_TAPS) return refuse(new BadArgumentsError(`at most ${MAX_TAPS} taps at once`));
    if (pattern === "") return refuse(new BadArgumentsError("a tap needs a pattern: /api/tap?pattern=lab.%23"));
    let dropped = 0;
    const heard = (topic: string, ...args: unknown[]) => {
      if (response.writableLength > TAP_UNSENT_BYTES) return void dropped++;
      response.write(`event: publication\ndata: ${toJson({ topic, args, at: Date.now(), dropped })}\n\n`);
    };
    this.runtime.subscribe(heard, pattern, { withTopic: true }).then((unsubscribe) => {
      response.write(`event: tapping\ndata: ${JSON.stringify(pattern)}\n\n`);
      this.taps.add(unsubscribe);
      const end = () => {
        this.taps.delete(unsubscribe);
        void unsubscribe();
      };
      if (response.closed) end();
      else response.once("close", end);
    }, refuse);
  }

  /** POST /api/call, /api/publish, /api/service, /api/invite: a JSON body in, the result or the typed error out. */
  private act(request: IncomingMessage, response: ServerResponse, path: string, asker: Asker): void {
    const far = asker === "another computer";
    readJson(request)
      .then((body) => {
        if (path === "/api/call") return this.call(body, far);
        if (path === "/api/publish") return this.publish(body);
        if (path === "/api/service") return this.service(body, far);
        if (path === "/api/invite" && this.options.invite) return this.options.invite(body, far);
        throw new NotFound(path);
      })
      .then(
        (value) => sendJson(response, 200, { value }),
        // What another computer may not do is refused as HTTP says it (its error in the body too).
        (error) => sendError(response, error, error instanceof NotFound ? 404 : far && error instanceof NotPermittedError ? 403 : undefined),
      );
  }

  private call(body: Record<string, unknown>, far: boolean): Promise<unknown> {
    const fn = text(body, "fn");
    const args = list(body, "args");
    const host = optionalText(body, "host");
    if (far) return callFromAfar(this.runtime, fn, args, host);
    return this.runtime.callWith(fn, args, host === undefined ? {} : { host });
  }

  private publish(body: Record<string, unknown>): Promise<number> {
    return this.runtime.publish(text(body, "topic"), ...list(body, "args"));
  }

  private async service(body: Record<string, unknown>, far: boolean): Promise<ServiceInfo> {
    const name = text(body, "name");
    const action = text(body, "action");
    if (far) return serviceFromAfar(this.runtime, text(body, "host"), name, action);
    const host = this.runtime.getHost(text(body, "host"));
    if (action === "start") return host.startService(name);
    if (action === "stop") return host.stopService(name);
    if (action === "restart") return host.stopService(name).then(() => host.startService(name));
    throw new BadArgumentsError(`action must be start, stop or restart, not "${action}"`);
  }
}

/**
 * A served method is registered twice, as `echo` and `echo.echo` (lib/runtime/offers.ts `serve`): each
 * full name with its short name beside it, and every other name alone.
 */
function aliased(entries: FunctionEntry[]): { entry: FunctionEntry; alias?: string }[] {
  const names = new Set(entries.map((entry) => entry.name));
  const shortOf = (name: string) => name.slice(name.indexOf(".") + 1);
  const isShort = new Set(entries.filter((e) => e.name.includes(".") && names.has(shortOf(e.name))).map((e) => shortOf(e.name)));
  return entries
    .filter((entry) => !isShort.has(entry.name))
    .map((entry) => (entry.name.includes(".") && isShort.has(shortOf(entry.name)) ? { entry, alias: shortOf(entry.name) } : { entry }));
}

class NotFound extends Error {
  constructor(path: string) {
    super(`no action ${path}: /api/call, /api/publish, /api/service`);
  }
}

function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BadArgumentsError(`the request body is over ${MAX_BODY_BYTES} bytes`));
        request.destroy();
      } else chunks.push(chunk);
    });
    request.on("end", () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
        if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("it is not an object");
        resolve(body as Record<string, unknown>);
      } catch (error) {
        reject(new BadArgumentsError(`the request body must be a JSON object: ${(error as Error).message}`));
      }
    });
    request.on("error", reject);
  });
}

function text(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== "string" || value === "") throw new BadArgumentsError(`"${key}" must be a non-empty string`);
  return value;
}

function optionalText(body: Record<string, unknown>, key: string): string | undefined {
  return body[key] === undefined || body[key] === "" ? undefined : text(body, key);
}

function list(body: Record<string, unknown>, key: string): unknown[] {
  const value = body[key] ?? [];
  if (!Array.isArray(value)) throw new BadArgumentsError(`"${key}" must be a JSON array`);
  return value;
}

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(toJson(value));
}

/** An error as the page shows it: its class, its stable code, its message; what a function threw, by its own class and code. */
function sendError(response: ServerResponse, error: unknown, status = 200): void {
  const { name, message, code, remoteName, remoteCode } = error as Partial<RemoteError> & { code?: string };
  const remote = remoteName === undefined ? {} : { remoteName, remoteCode: remoteCode ?? null };
  sendJson(response, status, { error: { name: name ?? "Error", code: code ?? null, message: message ?? String(error), ...remote } });
}
