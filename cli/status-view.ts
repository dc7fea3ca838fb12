import type { HostInfo } from "../lib/wire/router-answers.js";
import type { ServiceInfo } from "../lib/services/supervisor.js";

/** What the status page shows (cli/status-board.ts gathers it, cli/from-afar.ts bounds it for another computer). */

export interface FunctionView {
  name: string;
  /** The short name of a method (`echo`) beside its full one (`echo.echo`): one function, counted together. */
  alias?: string;
  scope: string;
  visibility: string;
  calls: number;
  errors: number;
  /** Calls per second answered since the view before. */
  rate: number;
  p99Us: number;
}

export interface ServerView {
  id: string;
  host: string;
  hostId: string;
  pid: number;
  port: number;
  state?: string;
  suspect: boolean;
  functions: FunctionView[];
  topics: string[];
}

export interface ServicesView {
  host: string;
  hostId: string;
  services?: (ServiceInfo & { log: string[] })[];
  error?: string;
}

export interface StatusView {
  host: string;
  at: number;
  hosts: HostInfo[];
  servers: ServerView[];
  services: ServicesView[];
}
