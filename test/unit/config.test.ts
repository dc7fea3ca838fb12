import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "smol-toml";
import { afterAll, describe, expect, test } from "vitest";
import { CONFIG_KEYS, loadConfig } from "../../lib/config.js";
import { ConfigError } from "../../lib/errors.js";
import { PACKAGE_ROOT } from "../../lib/paths.js";

const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

function folders(user?: string, local?: string) {
  const root = mkdtempSync(join(tmpdir(), "labc-config-"));
  roots.push(root);
  const xdg = join(root, "xdg");
  const cwd = join(root, "project");
  mkdirSync(join(xdg, "labc"), { recursive: true });
  mkdirSync(cwd);
  if (user !== undefined) writeFileSync(join(xdg, "labc", "config.toml"), user);
  if (local !== undefined) writeFileSync(join(cwd, "labc.toml"), local);
  return { env: { XDG_CONFIG_HOME: xdg } as NodeJS.ProcessEnv, cwd, xdg };
}

describe("config", () => {
  test("defaults < user file < ./labc.toml < env < flags, each value with its source", () => {
    const { env, cwd, xdg } = folders(
      "[router]\nport = 6001\nlinger = 5\n[call]\ntimeout = 2\n",
      "[router]\nport = 6002\n",
    );
    env.LABC_CALL_TIMEOUT = "7.5";
    const { values, sources } = loadConfig({ env, cwd, flags: { "call.scope": "host" } });
    expect(values["router.port"]).toBe(6002);
    expect(sources["router.port"]).toBe(join(cwd, "labc.toml"));
    expect(values["router.linger"]).toBe(5);
    expect(sources["router.linger"]).toBe(join(xdg, "labc", "config.toml"));
    expect(values["call.timeout"]).toBe(7.5);
    expect(sources["call.timeout"]).toBe("env LABC_CALL_TIMEOUT");
    expect(values["call.scope"]).toBe("host");
    expect(sources["call.scope"]).toBe("flag");
    expect(sources["wire.max_frame_size"]).toBe("default");
  });

  test.each([
    ["[router]\nport = 99999\n", /labc\.toml: router\.port: expected a port number/],
    ["[router]\nprot = 1\n", /router\.prot: unknown key/],
    ["[call]\nscope = \"galaxy\"\n", /call\.scope: expected one of server, host, network/],
    ["router = 5\n", /labc\.toml: router: expected a table/],
    ["[router\nport = 1\n", /labc\.toml: not valid TOML \(line 1/],
    ['[services.Light]\nrestart = "sometimes"\n', /services\.Light\.restart: expected "no" or "on-failure"/],
    ["[services.Light]\nneeds = 3\n", /services\.Light\.needs: expected a list of service names/],
  ])("a bad file names the file, the key and what was expected: %j", (text, message) => {
    const { env, cwd } = folders(undefined, text);
    expect(() => loadConfig({ env, cwd })).toThrow(ConfigError);
    expect(() => loadConfig({ env, cwd })).toThrow(message);
  });

  test("a service's table: restart and needs for labc, the rest for its constructor", () => {
    const { env, cwd } = folders(undefined, '[services.Light]\nrestart = "on-failure"\nneeds = ["Echo"]\nport = "/dev/ttyUSB0"\n');
    expect(loadConfig({ env, cwd }).services.Light).toEqual({
      restart: "on-failure",
      needs: ["Echo"],
      options: { port: "/dev/ttyUSB0" },
    });
  });

  test("a bad environment variable is named", () => {
    const { env, cwd } = folders();
    env.LABC_ROUTER_PORT = "abc";
    expect(() => loadConfig({ env, cwd })).toThrow(/^env LABC_ROUTER_PORT: router\.port: expected a port/);
  });

  test("config.example.toml documents every key with its default", () => {
    const text = readFileSync(join(PACKAGE_ROOT, "config.example.toml"), "utf8");
    const uncommented = parse(text) as Record<string, Record<string, unknown>>;
    const { env, cwd } = folders();
    const { values } = loadConfig({ env, cwd });
    for (const key of CONFIG_KEYS) {
      const [table, name] = key.split(".") as [string, string];
      const shown = uncommented[table]?.[name];
      if (key === "host.name") expect(text).toContain(`# name = `);
      else expect(shown, key).toEqual(values[key]);
      // every key has a comment line just above it
      const lines = text.split("\n");
      const at = lines.findIndex((line) => line.replace(/^# /, "").startsWith(`${name} = `));
      expect(lines[at - 1], key).toMatch(/^#/);
    }
  });
});
