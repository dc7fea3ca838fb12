import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { randomBytes } from "node:crypto";
import { configure, network } from "../lib/index.js";
import { freePort } from "../lib/net/free-port.js";
import { CLI_PATH, PACKAGE_ROOT } from "../lib/paths.js";

const say = (text: string) => process.stdout.write(`${text}\n`);

/**
 * `labc demo`: the echo service served by one process, called and published to from this one.
 * It uses a root port of its own, so it neither meets nor disturbs a router already running,
 * and it ends every process it started (by PID).
 */
export async function runDemo(): Promise<void> {
  const port = await freePort();
  // The router's log goes to a folder of the demo's own, removed at the end.
  const logs = mkdtempSync(join(tmpdir(), "labc-demo-"));
  // A one-host demo: discovery stays off, so nothing is sent beyond this machine.
  const env = {
    ...process.env,
    XDG_STATE_HOME: logs,
    LABC_ROUTER_PORT: String(port),
    LABC_ROUTER_LINGER: "2",
    LABC_DISCOVERY_ENABLED: "false",
  };
  const echoFile = join(PACKAGE_ROOT, "services", "echo.ts");

  say(`1. A server process serves services/echo.ts (router on 127.0.0.1:${port}):`);
  const server = spawn(process.execPath, [CLI_PATH, "serve", echoFile], { env, stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
  const waiters: { match: (line: string) => boolean; done: () => void }[] = [];
  createInterface({ input: server.stdout! }).on("line", (line) => {
    say(`   [server pid ${server.pid}] ${line}`);
    for (const waiter of waiters.splice(0)) {
      if (waiter.match(line)) waiter.done();
      else waiters.push(waiter);
    }
  });
  const waitForLine = (match: (line: string) => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo: the server did not ${what} within 20 s`)), 20000);
      waiters.push({ match, done: () => (clearTimeout(timer), resolve()) });
      exited.then((code) => reject(new Error(`demo: the server exited (code ${code}) before it could ${what}`)));
    });

  const labc = configure({ "router.port": port, "discovery.enabled": false });
  let routerPid: number | undefined;
  try {
    await waitForLine((line) => line.startsWith("labc: serving"), "start");

    say(`\n2. This process (pid ${process.pid}) calls it:`);
    say(`   call("echo", "Hello World!")    -> ${JSON.stringify(await labc.call("echo", "Hello World!"))}`);
    say(`   network.echo.add(1, 2)          -> ${await network.echo!.add!(1, 2)}`);
    const bytes = randomBytes(1024 * 1024);
    const back: Buffer = await labc.call("echo", bytes);
    say(`   call("echo", <1 MiB of bytes>)  -> ${back.length} bytes, ${back.equals(bytes) ? "identical" : "DIFFERENT"}`);
    routerPid = labc.admin.routerPid;

    say(`\n3. This process publishes on lab.print; the server's subscriber prints it:`);
    const printed = waitForLine((line) => line.includes("hello subscribers"), "print the publication");
    const reached = await labc.publish("lab.print", "hello subscribers");
    await printed;
    say(`   publish("lab.print", "hello subscribers") reached ${reached} server(s)`);
  } finally {
    say(`\n4. Cleaning up: stopping the server (pid ${server.pid}) and the router (pid ${routerPid ?? "?"}).`);
    await labc.close();
    server.kill("SIGTERM");
    await exited;
    if (routerPid) {
      try {
        process.kill(routerPid, "SIGTERM");
      } catch {
        // already gone (it lingers only briefly)
      }
    }
    rmSync(logs, { recursive: true, force: true });
  }
  say("Done. Next: `labc serve services/echo.ts` in one terminal, `labc call echo hi` in another; docs/tutorial.md goes on to two computers.");
}
