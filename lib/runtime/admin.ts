import type { BackplaneStatus } from "../wire/router-answers.js";
import type { FunctionPool } from "../pool/function-pool.js";
import type { HostMetrics } from "../wire/router-answers.js";
import type { RouterLink } from "./router-link.js";

/**
 * What the labc command and the benchmarks need of a process's link to its router, beyond the
 * public API: the pool replica as it stands, the router's own answers, and a call forced
 * through the routers. Not part of the package's API; nothing else reaches into the link.
 */
export class RuntimeAdmin {
  constructor(private readonly link: RouterLink) {}

  /** This host's router is reached and the pool replica is current. */
  ready(): Promise<void> {
    return this.link.ready();
  }

  /** The pool replica catches up with the router's. */
  sync(): Promise<void> {
    return this.link.sync();
  }

  /** The network's functions and subscriptions, as this process's replica has them. */
  get pool(): FunctionPool {
    return this.link.pool;
  }

  /** The router's process id, once it welcomed this process. */
  get routerPid(): number | undefined {
    return this.link.welcome?.pid;
  }

  /** What each process of this host did (`labc metrics`). */
  metrics(): Promise<HostMetrics> {
    return this.link.metrics();
  }

  /** The same, of every host of the network (`labc metrics --all`, `labc top`). */
  networkMetrics(): Promise<HostMetrics[]> {
    return this.link.networkMetrics();
  }

  /** A gateway's backplane: linked to which NATS server and how many sites, or why not. */
  backplane(): Promise<BackplaneStatus | null> {
    return this.link.backplane();
  }

  /** Calls `fn` of server `target` through the routers, as when its own port cannot be reached. */
  forward(target: string, fn: string, args: unknown[], timeoutMs: number): Promise<unknown> {
    return this.link.forward(target, fn, args, timeoutMs);
  }
}
