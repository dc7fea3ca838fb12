import { describe, expect, test } from "vitest";
import { FunctionPool } from "../../lib/pool/function-pool.js";
import type { FunctionEntry, Scope } from "../../lib/wire/message.js";

function server(pool: FunctionPool, id: string, hostId: string, functions: FunctionEntry[], topics: string[] = []) {
  const entry = pool.addServer({ id, host: hostId, hostId, address: "127.0.0.1", port: 1, pid: 1 });
  pool.announce(entry, functions, topics);
  return entry;
}
const fn = (name: string, scope: Scope = "network", visibility: FunctionEntry["visibility"] = "public"): FunctionEntry => ({
  name,
  scope,
  visibility,
});

describe("FunctionPool resolution", () => {
  test("bottom-up prefers the caller's server, then its host, then the network", () => {
    const pool = new FunctionPool();
    server(pool, "far", "h2", [fn("f")]);
    server(pool, "near", "h1", [fn("f")]);
    server(pool, "self", "h1", [fn("f")]);
    expect(pool.resolve("f", "network", { hostId: "h1", serverId: "self" })?.id).toBe("self");
    for (let i = 0; i < 50; i++) {
      expect(["near", "self"]).toContain(pool.resolve("f", "network", { hostId: "h1", serverId: "other" })?.id);
      expect(pool.resolve("f", "network", { hostId: "h2", serverId: "x" })?.id).toBe("far");
    }
  });

  test("a server of another site (reached through a gateway) comes after every server of this LAN", () => {
    const pool = new FunctionPool();
    const remote = pool.addServer({ id: "remote", host: "b2", hostId: "b2", address: "10.0.0.2", port: 1, pid: 1, gateway: "a1" });
    pool.announce(remote, [fn("f"), fn("g")]);
    server(pool, "lan", "a2", [fn("f")]);
    for (let i = 0; i < 50; i++) expect(pool.resolve("f", "network", { hostId: "a3" })?.id).toBe("lan");
    expect(pool.resolve("g", "network", { hostId: "a3" })?.id).toBe("remote");
    // Through its gateway's link: a1 dead takes it along, and only it.
    expect(pool.removeHost("a1").map((gone) => gone.id)).toEqual(["remote"]);
    expect(pool.resolve("f", "network", { hostId: "a3" })?.id).toBe("lan");
  });

  test("ties are broken at random", () => {
    const pool = new FunctionPool();
    for (const id of ["a", "b", "c"]) server(pool, id, "h1", [fn("f")]);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(pool.resolve("f", "host", { hostId: "h1" })!.id);
    expect([...seen].sort()).toEqual(["a", "b", "c"]);
  });

  test("a call's scope limits where it looks", () => {
    const pool = new FunctionPool();
    server(pool, "far", "h2", [fn("f")]);
    expect(pool.resolve("f", "host", { hostId: "h1" })).toBeUndefined();
    expect(pool.resolve("f", "server", { hostId: "h2", serverId: "x" })).toBeUndefined();
    expect(pool.resolve("f", "server", { hostId: "h2", serverId: "far" })?.id).toBe("far");
  });

  test("a function's scope limits who sees it; secret functions are never resolved", () => {
    const pool = new FunctionPool();
    server(pool, "s", "h1", [fn("hostOnly", "host"), fn("serverOnly", "server"), fn("secret", "network", "secret")]);
    expect(pool.resolve("hostOnly", "network", { hostId: "h1" })?.id).toBe("s");
    expect(pool.resolve("hostOnly", "network", { hostId: "h2" })).toBeUndefined();
    expect(pool.resolve("serverOnly", "host", { hostId: "h1", serverId: "other" })).toBeUndefined();
    expect(pool.resolve("serverOnly", "host", { hostId: "h1", serverId: "s" })?.id).toBe("s");
    expect(pool.resolve("secret", "network", { hostId: "h1", serverId: "s" })).toBeUndefined();
  });

  test("visibility: local stays on its host, private answers callers naming its host", () => {
    const pool = new FunctionPool();
    server(pool, "s", "h2", [fn("loc", "network", "local"), fn("priv", "network", "private")]);
    const fromH1 = { hostId: "h1", callerHostId: "h1" };
    expect(pool.resolve("loc", "network", fromH1)).toBeUndefined();
    expect(pool.resolve("loc", "network", { hostId: "h2", callerHostId: "h1", named: true })).toBeUndefined();
    expect(pool.resolve("loc", "network", { hostId: "h2" })?.id).toBe("s");
    expect(pool.resolve("priv", "network", fromH1)).toBeUndefined();
    expect(pool.resolve("priv", "network", { hostId: "h2", callerHostId: "h1", named: true })?.id).toBe("s");
    expect(pool.resolve("priv", "network", { hostId: "h3", callerHostId: "h1", named: true })).toBeUndefined();
  });

  test("realms: a caller sees its own realm and those above it", () => {
    const pool = new FunctionPool();
    const entry = pool.addServer({ id: "o", host: "h", hostId: "h", address: "a", port: 1, pid: 1, realm: "lab1.optics" });
    pool.announce(entry, [fn("f")]);
    const from = (realm: string) => ({ hostId: "h", realm });
    expect(pool.resolve("f", "network", from(""))).toBeUndefined();
    expect(pool.resolve("f", "network", from("lab1"))).toBeUndefined();
    expect(pool.resolve("f", "network", from("lab1.opticsx"))).toBeUndefined();
    expect(pool.resolve("f", "network", from("lab1.optics"))?.id).toBe("o");
    expect(pool.resolve("f", "network", from("lab1.optics.bench"))?.id).toBe("o");
  });

  test("withdrawn functions and removed servers vanish at once", () => {
    const pool = new FunctionPool();
    const s = server(pool, "s", "h1", [fn("f"), fn("g")], ["lab.*"]);
    pool.withdraw(s, ["f"]);
    expect(pool.resolve("f", "network", { hostId: "h1" })).toBeUndefined();
    expect(pool.resolve("g", "network", { hostId: "h1" })?.id).toBe("s");
    expect(pool.subscribers("lab.x").length).toBe(1);
    pool.removeServer("s");
    expect(pool.resolve("g", "network", { hostId: "h1" })).toBeUndefined();
    expect(pool.subscribers("lab.x").length).toBe(0);
  });

  test("a replica built from notices equals the original", () => {
    const pool = new FunctionPool();
    server(pool, "s", "h1", [fn("f")], ["a.#"]);
    const replica = new FunctionPool();
    replica.replaceWith(pool.snapshot());
    expect(replica.snapshot()).toEqual(pool.snapshot());
    replica.applyAnnounce({ server: { ...pool.snapshot()[0]!, functions: [fn("g")], topics: [] } });
    replica.applyWithdraw({ server: "s", functions: ["f"] });
    expect(replica.resolve("g", "network", { hostId: "h1" })?.id).toBe("s");
    expect(replica.resolve("f", "network", { hostId: "h1" })).toBeUndefined();
  });

  test("a suspect server is avoided while another offers the function, and used when none does", () => {
    const pool = new FunctionPool();
    server(pool, "frozen", "h1", [fn("f"), fn("only")]);
    server(pool, "well", "h1", [fn("f")]);
    expect(pool.setSuspect("frozen", true)).toBe(true);
    expect(pool.setSuspect("frozen", true)).toBe(false);
    for (let i = 0; i < 30; i++) expect(pool.resolve("f", "network", { hostId: "h1" })?.id).toBe("well");
    expect(pool.resolve("only", "network", { hostId: "h1" })?.id).toBe("frozen");
    expect(pool.snapshot().find((s) => s.id === "frozen")?.suspect).toBe(true);
    pool.setSuspect("frozen", false);
    const picked = new Set(Array.from({ length: 60 }, () => pool.resolve("f", "network", { hostId: "h1" })?.id));
    expect(picked).toEqual(new Set(["frozen", "well"]));
  });
});
