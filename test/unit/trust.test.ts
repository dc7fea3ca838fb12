import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { loadConfig } from "../../lib/config.js";
import { ConfigError } from "../../lib/errors.js";
import { NetworkKey, networkKey } from "../../lib/trust/network-key.js";
import { fromOwnHost } from "../../lib/trust/own-address.js";
import { newSecret, parseSecret, secretFile, writeSecretFile } from "../../lib/trust/secret.js";
import { AnnouncementCheck, sign } from "../../lib/trust/signed-announcement.js";

const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

function configFolder(): { env: NodeJS.ProcessEnv; dir: string; cwd: string } {
  const root = mkdtempSync(join(tmpdir(), "labc-trust-"));
  roots.push(root);
  mkdirSync(join(root, "labc"));
  return { env: { XDG_CONFIG_HOME: root }, dir: join(root, "labc"), cwd: root };
}

describe("the network secret", () => {
  test("a new secret is 256 random bits in a recognisable text; a passphrase is refused, naming where it came from", () => {
    const secret = newSecret();
    expect(secret).toMatch(/^labc1_[A-Za-z0-9_-]{43}$/);
    expect(parseSecret(secret, "x")).toHaveLength(32);
    expect(newSecret()).not.toBe(secret);
    expect(() => parseSecret("correct horse battery staple", "env LABC_SECRET")).toThrow(ConfigError);
    expect(() => parseSecret("correct horse battery staple", "env LABC_SECRET")).toThrow(/env LABC_SECRET: network.secret: not a labc network secret \(make one with `labc secret new`/);
  });

  test("config takes it from the secret file, then files, then LABC_SECRET, then flags; and says where from", () => {
    const { env, dir, cwd } = configFolder();
    expect(loadConfig({ env, cwd }).values["network.secret"]).toBe("");
    const stored = newSecret();
    writeSecretFile(secretFile(dir), stored);
    let loaded = loadConfig({ env, cwd });
    expect(loaded.values["network.secret"]).toBe(stored);
    expect(loaded.sources["network.secret"]).toBe(join(dir, "secret"));
    const fromEnv = newSecret();
    loaded = loadConfig({ env: { ...env, LABC_SECRET: fromEnv }, cwd });
    expect(loaded.values["network.secret"]).toBe(fromEnv);
    expect(loaded.sources["network.secret"]).toBe("env LABC_SECRET");
    const fromFlag = newSecret();
    expect(loadConfig({ env: { ...env, LABC_SECRET: fromEnv }, cwd, flags: { "network.secret": fromFlag } }).values["network.secret"]).toBe(fromFlag);
    expect(() => loadConfig({ env: { ...env, LABC_SECRET: "hunter2" }, cwd })).toThrow(/^env LABC_SECRET: network\.secret: expected a secret made by `labc secret new`/);
  });

  test("a secret file that other users can read is refused, with the command that fixes it", () => {
    const { env, dir, cwd } = configFolder();
    const file = secretFile(dir);
    writeSecretFile(file, newSecret());
    chmodSync(file, 0o644);
    expect(() => loadConfig({ env, cwd })).toThrow(`${file}: other users can read this secret: run \`chmod 600 ${file}\``);
  });

  test("a config file holding the secret must be its owner's alone", () => {
    const { env, dir, cwd } = configFolder();
    const file = join(dir, "config.toml");
    writeFileSync(file, `[network]\nsecret = "${newSecret()}"\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    expect(() => loadConfig({ env, cwd })).toThrow(`${file}: network.secret: other users can read this file`);
    chmodSync(file, 0o600);
    expect(loadConfig({ env, cwd }).sources["network.secret"]).toBe(file);
  });

  test("keys: the same on every host with the secret, different for another; none of them is the secret", () => {
    const secret = newSecret();
    const a = new NetworkKey(parseSecret(secret, "a"));
    const b = new NetworkKey(parseSecret(secret, "b"));
    const other = new NetworkKey(parseSecret(newSecret(), "c"));
    expect(a.id).toMatch(/^[0-9a-f]{16}$/);
    expect([a.id, a.psk]).toEqual([b.id, b.psk]);
    expect(other.id).not.toBe(a.id);
    expect(other.psk.equals(a.psk)).toBe(false);
    expect(a.psk.equals(parseSecret(secret, "a"))).toBe(false);
    expect(a.identity).toBe(`labc1 ${a.id}`);
    expect(networkKey(secret)).toBe(networkKey(secret));
    expect(a.verify("text", a.mac("text"))).toBe(true);
    expect(a.verify("text", other.mac("text"))).toBe(false);
    expect(a.verify("text!", a.mac("text"))).toBe(false);
  });
});

describe("signed announcements", () => {
  const key = networkKey(newSecret());
  const host = () => ({ hostId: "id-h1", name: "h1", port: 55555, addresses: ["10.0.0.1"] });

  test("taken when signed with the network's key, refused when changed or signed with another", () => {
    const check = new AnnouncementCheck(key, { repeats: false });
    expect(check.accept(sign(host(), key, 1000), "10.0.0.1", 1000)).toBe(true);
    expect(check.accept({ ...sign(host(), key, 2000), name: "evil" }, "10.0.0.9", 2000)).toBe(false);
    expect(check.accept({ ...sign(host(), key, 2000), port: 4000 }, "10.0.0.9", 2000)).toBe(false);
    expect(check.accept(sign(host(), networkKey(newSecret()), 3000), "10.0.0.9", 3000)).toBe(false);
    expect(check.accept(host(), "10.0.0.9", 3000)).toBe(false);
  });

  test("a replay is refused: nothing older than the last one taken from that host, nor the same again", () => {
    const check = new AnnouncementCheck(key, { repeats: false });
    const first = sign(host(), key, 1000);
    const second = sign(host(), key, 2000);
    expect(check.accept(second, "10.0.0.1", 2000)).toBe(true);
    expect(check.accept(second, "10.0.0.9", 2100)).toBe(false);
    expect(check.accept(first, "10.0.0.9", 2100)).toBe(false);
    // mDNS repeats its record as published: a repeat is taken there, an older one is not.
    const mdns = new AnnouncementCheck(key, { repeats: true });
    expect(mdns.accept(second, "10.0.0.1", 2000)).toBe(true);
    expect(mdns.accept(second, "10.0.0.1", 9000)).toBe(true);
    expect(mdns.accept(first, "10.0.0.9", 9000)).toBe(false);
  });

  test("a beacon signed too far from now is refused (a replay from long ago)", () => {
    const check = new AnnouncementCheck(key, { maxAgeMs: 60_000, repeats: false });
    expect(check.accept(sign(host(), key, 0), "10.0.0.9", 61_000)).toBe(false);
    expect(check.accept(sign(host(), key, 2000), "10.0.0.1", 61_000)).toBe(true);
  });

  test("an open network takes unsigned announcements only, and signs nothing", () => {
    const check = new AnnouncementCheck(undefined, { repeats: false });
    expect(sign(host(), undefined)).toEqual(host());
    expect(check.accept(host(), "10.0.0.1")).toBe(true);
    expect(check.accept(sign(host(), key), "10.0.0.2")).toBe(false);
  });
});

test("own host: loopback and this host's own addresses, by what the kernel says; nothing else", () => {
  expect(fromOwnHost("127.0.0.1:4000")).toBe(true);
  expect(fromOwnHost("127.3.2.1:4000")).toBe(true);
  expect(fromOwnHost("::ffff:127.0.0.1:4000")).toBe(true);
  expect(fromOwnHost("::1:4000")).toBe(true);
  const own = Object.values(networkInterfaces()).flat().find((entry) => entry && !entry.internal && entry.family === "IPv4");
  if (own) expect(fromOwnHost(`${own.address}:4000`)).toBe(true);
  expect(fromOwnHost("203.0.113.9:4000")).toBe(false);
});
