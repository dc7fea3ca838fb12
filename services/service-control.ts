import { context, NotPermittedError, register } from "labc";
import type { ServiceInfo, Supervisor } from "../lib/services/supervisor.js";

export interface ServiceControlOptions {
  /** This host's name, as refusals name it. */
  host: string;
  /**
   * Whether other hosts may use it: when the network has a secret (every caller is a member),
   * or when the host's config says so (`service_control.remote`).
   */
  remote: boolean;
  /**
   * Whether other sites may use it too (the NATS backplane): only when the host's config says
   * `service_control.remote = true`. A network secret does not let them in: a caller from another
   * site proved a NATS login, not the secret.
   */
  otherSites: boolean;
}

/**
 * The built-in service every router runs: lists, starts and stops the services installed on its
 * host, and reads their logs. Reached as `getHost(name).startService(...)` or `labc start-service
 * NAME --host HOST`: from any host of a network with a secret, from its own host only otherwise;
 * from another site only when the host's config says `service_control.remote = true`. It only ever
 * starts what is installed on its own host.
 */
export class ServiceControl {
  constructor(
    private readonly supervisor: Supervisor,
    private readonly options: ServiceControlOptions,
  ) {}

  @register()
  listServices(): Promise<ServiceInfo[]> {
    this.permit("list its services");
    return this.supervisor.list();
  }

  @register()
  startService(name: string): Promise<ServiceInfo> {
    this.permit(`start ${name}`);
    return this.supervisor.start(String(name));
  }

  @register()
  stopService(name: string): Promise<ServiceInfo> {
    this.permit(`stop ${name}`);
    return this.supervisor.stop(String(name));
  }

  /** Log text from byte `offset` (negative: that many bytes before the end). */
  @register()
  serviceLogs(name: string, offset: number | undefined = undefined): { name: string; text: string; offset: number } {
    this.permit(`read the log of ${name}`);
    return this.supervisor.logs(String(name), typeof offset === "number" ? offset : undefined);
  }

  /** Throws unless this call may act: it comes from this host, or other hosts (sites) are let in. */
  private permit(what: string): void {
    const call = context();
    const { host } = this.options;
    if (call.fromOtherSite && !this.options.otherSites) {
      throw new NotPermittedError(
        `${host} does not let other sites ${what}: ServiceControl does not cross the NATS backplane (a NATS ` +
          `login is not the network secret). Do it from a host of ${host}'s own site, or on ${host}'s status page; ` +
          `or set service_control.remote = true in ${host}'s config to let every site that reaches NATS do it`,
      );
    }
    if (this.options.remote || !call.fromOtherHost) return;
    throw new NotPermittedError(
      `${host} does not let other hosts ${what}: its network is open (no secret). Give every host the ` +
        "same network secret (`labc secret new` on one, `labc secret show` there, LABC_SECRET or " +
        `\`labc secret set\` on the others), or set service_control.remote = true in ${host}'s config`,
    );
  }
}
