import { describe, expect, test } from "vitest";
import { FunctionPool, reachedThrough } from "../../lib/pool/function-pool.js";
import { claimProblem, type Speaker } from "../../lib/pool/claims.js";
import type { FunctionEntry, ServerEntry } from "../../lib/wire/message.js";

/**
 * Who may say what of servers (lib/pool/claims.ts), table-driven. This host is "home"; "mate"
 * is a host of its LAN; "gate" a linked router that is this LAN's gateway; "far" a host of
 * another site, whose gateway there is "siteGw".
 */
const fn = (name: string, visibility: FunctionEntry["visibility"] = "public", scope: FunctionEntry["scope"] = "network"): FunctionEntry => ({
  name,
  scope,
  visibility,
});
const entry = (id: string, hostId: string, extra: Partial<ServerEntry> = {}): ServerEntry => ({
  id,
  host: hostId,
  hostId,
  address: "10.0.0.9",
  port: 1,
  pid: 1,
  functions: [fn("f")],
  topics: [],
  ...extra,
});

function pool(): FunctionPool {
  const pool = new FunctionPool();
  pool.addServer(entry("home-1", "home"));
  pool.addServer(entry("mate-1", "mate"));
  pool.addServer(entry("gate-1", "gate"));
  pool.addServer(entry("far-1", "far", { gateway: "gate" }));
  pool.addServer(entry("site-1", "far", { gateway: "home" }));
  return pool;
}
const lanHost = (hostId: string) => ["home", "mate", "gate"].includes(hostId);
const link = (hostId: string): Speaker => ({ kind: "link", hostId, self: "home", lanHost, owns: (server) => reachedThrough(server) === hostId });
const site = (hostId: string, listed: string[]): Speaker => ({
  kind: "site",
  hostId,
  self: "home",
  lanHost,
  owns: (server) => server.gateway === "home" && listed.includes(server.id),
});

describe("what a router link may say", () => {
  test.each([
    ["its own server", "gate", entry("gate-2", "gate"), undefined],
    ["more functions of its own server", "gate", entry("gate-1", "gate"), undefined],
    ["another site's server, reached through it", "gate", entry("far-2", "far", { gateway: "gate" }), undefined],
    ["one of another site it already listed", "gate", entry("far-1", "far", { gateway: "gate" }), undefined],
    ["a server on this host", "gate", entry("x", "home"), /on host home, which is not its own/],
    ["a server on this host, marked as another site's", "gate", entry("x", "home", { gateway: "gate" }), /a host of this LAN \(this one\)/],
    ["a server on another LAN host, marked as another site's", "gate", entry("x", "mate", { gateway: "gate" }), /on host mate, a host of this LAN/],
    ["a server on its own host, marked as another site's", "gate", entry("x", "gate", { gateway: "gate" }), /on host gate, a host of this LAN/],
    ["a server reached through another host", "gate", entry("x", "far", { gateway: "mate" }), /reached through host mate/],
    ["the id of this host's server", "gate", entry("home-1", "gate"), /an id taken by a server on host home/],
    ["the id of this host's server, as another site's", "gate", entry("home-1", "far", { gateway: "gate" }), /an id taken/],
    ["the id of another LAN host's server", "gate", entry("mate-1", "gate"), /an id taken by a server on host mate/],
    ["its own server's id, moved to another host", "gate", entry("far-1", "far2", { gateway: "gate" }), /an id taken by a server on host far/],
    ["the id of a server it is not the gateway of", "mate", entry("site-1", "far", { gateway: "mate" }), /an id taken/],
    ["a local function", "gate", entry("gate-3", "gate", { functions: [fn("l", "local")] }), /offered l .* visibility local/],
    ["a host-scoped function", "gate", entry("gate-3", "gate", { functions: [fn("h", "public", "host")] }), /offered h .* scope host/],
    ["a secret function", "gate", entry("gate-3", "gate", { functions: [fn("s", "secret")] }), /visibility secret/],
    ["a server-scoped function", "gate", entry("gate-3", "gate", { functions: [fn("s", "public", "server")] }), /scope server/],
    ["a private function", "gate", entry("gate-3", "gate", { functions: [fn("p", "private")] }), undefined],
  ])("%s", (_what, speaker, claimed, problem) => {
    const found = claimProblem(claimed, link(speaker), pool());
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toMatch(problem);
  });
});

describe("what another site may list", () => {
  test.each([
    ["a server on its gateway's host", entry("s-2", "siteGw"), undefined],
    ["a server on another host of its own", entry("s-2", "far"), undefined],
    ["one it listed before", entry("site-1", "far"), undefined],
    ["a server on this host", entry("x", "home"), /on host home, a host of this LAN \(this one\)/],
    ["a server on a LAN host", entry("x", "mate"), /on host mate, a host of this LAN/],
    ["the id of this host's server", entry("home-1", "far"), /an id taken by a server on host home/],
    ["the id of another site's server", entry("far-1", "far"), /an id taken/],
    ["a local function", entry("s-3", "far", { functions: [fn("l", "local")] }), /visibility local/],
    ["a host-scoped function", entry("s-3", "far", { functions: [fn("h", "public", "host")] }), /scope host/],
  ])("%s", (_what, claimed, problem) => {
    const found = claimProblem(claimed, site("siteGw", ["site-1"]), pool());
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toMatch(problem);
  });
});
