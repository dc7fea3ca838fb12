import { spawnSync } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { frameOf, HostilePeer, KIND } from "../../bench/hostile-peer.js";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { FIXTURES, TestHost, type Served } from "../helpers.js";

let host: TestHost;
let typed: Served;
let labc: Runtime;

beforeAll(async () => {
  host = await TestHost.start();
  typed = await host.serve([join(FIXTURES, "typed-params.ts")]);
  labc = host.runtime();
});
afterAll(() => host.cleanup());

describe("signatures at run time", () => {
  test("labc ls --long shows each function's parameters as its TypeScript source declares them", async () => {
    const listed = await host.cli(["ls", "--long"]);
    expect(listed.code).toBe(0);
    const signatures = listed.stdout.split("\n").map((line) => line.split(/\s{2,}/)[0]);
    expect(signatures).toEqual(
      expect.arrayContaining([
        "scale(value: number, factor?, negate?: boolean)",
        "kinds(n: number, on: boolean, text: string, big: bigint, data: unknown)",
        "total(label: string, ...values: number[])",
        "typed.ran()",
      ]),
    );
    const json = JSON.parse((await host.cli(["ls", "--json"])).stdout) as { functions: { name: string; params?: unknown }[] }[];
    const scale = json.flatMap((server) => server.functions).find((f) => f.name === "scale");
    expect(scale?.params).toEqual([
      { name: "value", type: "number" },
      { name: "factor", optional: true },
      { name: "negate", type: "boolean", optional: true },
    ]);
  });

  test("the CLI converts arguments by the declared types", async () => {
    const kinds = await host.cli(["call", "kinds", "42", "true", "42", "12345678901234567890", '{"a":1}', "--json"]);
    expect(kinds).toMatchObject({ code: 0, stdout: '["number","boolean","string","bigint",{"a":1}]\n' });
    expect((await host.cli(["call", "total", "sum", "1", "2", "3.5"])).stdout).toBe("sum=6.5\n");
    expect((await host.cli(["call", "scale", "3"])).stdout).toBe("6\n");
    expect((await host.cli(["call", "scale", "3", "10", "true"])).stdout).toBe("-30\n");
  });

  test("the CLI refuses a wrong count or an argument its type refuses, naming the function, before sending", async () => {
    const before = await labc.call<number>("ran");
    const few = await host.cli(["call", "kinds", "1"]);
    expect(few).toMatchObject({ code: 2, stdout: "" });
    expect(few.stderr).toBe("labc: kinds(n: number, on: boolean, text: string, big: bigint, data: unknown) takes 5 arguments, not 1\n");
    const many = await host.cli(["call", "scale", "1", "2", "true", "4"]);
    expect(many.stderr).toBe("labc: scale(value: number, factor?, negate?: boolean) takes 1 to 3 arguments, not 4\n");
    const notNumber = await host.cli(["call", "total", "sum", "1", "two"]);
    expect(notNumber).toMatchObject({ code: 2, stderr: 'labc: total(label: string, ...values: number[]): values must be a number, not "two"\n' });
    const notBoolean = await host.cli(["call", "scale", "1", "2", "yes"]);
    expect(notBoolean.stderr).toBe('labc: scale(value: number, factor?, negate?: boolean): negate must be true or false, not "yes"\n');
    expect(await labc.call<number>("ran")).toBe(before);
  });

  test("a call with a wrong count gets LABC_BAD_ARGUMENTS from the server", async () => {
    const error = await labc.call("kinds", 1, true).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LABC_BAD_ARGUMENTS", message: expect.stringContaining("kinds(n: number, on: boolean, text: string, big: bigint, data: unknown) takes 5 arguments, not 2") });
    // The same from a peer of our own, frame by frame: the server checks, not only labc's callers.
    const peer = await HostilePeer.connect(typed.port);
    try {
      peer.hello();
      peer.send(frameOf(KIND.req, 7, { fn: "scale", args: [] }));
      peer.send(frameOf(KIND.req, 8, { fn: "total", args: ["x", 1, 2, 3, 4, 5] }));
      const refused = await peer.expect((frame) => frame.kind === KIND.exc && frame.id === 7);
      expect(refused.body).toMatchObject({ code: "LABC_BAD_ARGUMENTS", message: "scale(value: number, factor?, negate?: boolean) takes 1 to 3 arguments, not 0" });
      const answered = await peer.expect((frame) => frame.kind === KIND.rep && frame.id === 8);
      expect(answered.body).toMatchObject({ v: "x=15" });
    } finally {
      peer.destroy();
    }
  });

  test("types recorded by tsc's emitDecoratorMetadata are shown for a service tsc compiled", async () => {
    const dir = join(host.dir, "tsc-built");
    mkdirSync(join(dir, "node_modules"), { recursive: true });
    symlinkSync(PACKAGE_ROOT, join(dir, "node_modules", "labc"));
    writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
    writeFileSync(
      join(dir, "meter.ts"),
      'import { register } from "labc";\nexport class Meter {\n  @register() level(channel: number, label: string, at: Date) { return [channel, label, at]; }\n}\n',
    );
    const tsc = spawnSync(
      process.execPath,
      [join(PACKAGE_ROOT, "node_modules", "typescript", "bin", "tsc"), "--experimentalDecorators", "--emitDecoratorMetadata", "--target", "ES2022",
        "--module", "NodeNext", "--moduleResolution", "NodeNext", "--skipLibCheck", "--outDir", dir, join(dir, "meter.ts")],
      { encoding: "utf8" },
    );
    expect(tsc.stdout + tsc.stderr).toBe("");
    await host.serve([join(dir, "meter.js")]);
    const listed = await host.cli(["ls", "--long"]);
    expect(listed.stdout).toMatch(/^level\(channel: number, label: string, at: Date\) /m);
  });
});
