import { register } from "labc";
import type { ServiceInfo, Supervisor } from "../lib/services/supervisor.js";

/**
 * The built-in service every router runs: lists, starts and stops the services installed on its
 * host, and reads their logs. Reached from anywhere as `getHost(name).startService(...)` or
 * `labc start-service NAME --host HOST`. It only ever starts what is installed on its own host.
 */
export class ServiceControl {
  constructor(private readonly supervisor: Supervisor) {}

  @register()
  listServices(): Promise<ServiceInfo[]> {
    return this.supervisor.list();
  }

  @register()
  startService(name: string): Promise<ServiceInfo> {
    return this.supervisor.start(String(name));
  }

  @register()
  stopService(name: string): Promise<ServiceInfo> {
    return this.supervisor.stop(String(name));
  }

  /** Log text from byte `offset` (negative: that many bytes before the end). */
  @register()
  serviceLogs(name: string, offset?: number): { name: string; text: string; offset: number } {
    return this.supervisor.logs(String(name), typeof offset === "number" ? offset : undefined);
  }
}
