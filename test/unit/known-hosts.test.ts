import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, onTestFinished, test } from "vitest";
import type { Sighting } from "../../lib/discovery/discovery.js";
import { KnownHosts } from "../../lib/discovery/known-hosts.js";
import { parsePeer } from "../../lib/discovery/static-peers.js";

test("hosts remembered are saved, and sighted again by the next start", () => {
  const root = mkdtempSync(join(tmpdir(), "labc-known-"));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  const file = join(root, "labc", "known-hosts.json");
  const first = new KnownHosts(file);
  first.remember("id-a", "computer1", ["10.0.0.7", "192.168.1.7"], 55555);
  first.stop(); // saves at once
  expect(JSON.parse(readFileSync(file, "utf8"))["id-a"].name).toBe("computer1");
  const seen: Sighting[] = [];
  new KnownHosts(file).start((sighting) => seen.push(sighting));
  expect(seen).toEqual([
    { hostId: "id-a", name: "computer1", addresses: ["10.0.0.7", "192.168.1.7"], port: 55555, via: "known" },
  ]);
});

test("an unreadable file is an empty list, not a failure", () => {
  const seen: Sighting[] = [];
  new KnownHosts(join(tmpdir(), "labc-no-such-dir", "known-hosts.json")).start((s) => seen.push(s));
  expect(seen).toEqual([]);
});

test.each([
  ["computer1", { host: "computer1", port: 55555 }],
  ["10.0.0.7:6000", { host: "10.0.0.7", port: 6000 }],
  ["[fe80::1]:7000", { host: "fe80::1", port: 7000 }],
  ["[fe80::1]", { host: "fe80::1", port: 55555 }],
])("a static peer %s is %j", (text, expected) => {
  expect(parsePeer(text, 55555)).toEqual(expected);
});
