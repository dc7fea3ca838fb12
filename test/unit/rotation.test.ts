import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { keyIdOf, NetworkKey } from "../../lib/trust/network-key.js";
import { applyRotation, openRotation, readRotation, rotationFile, sealRotation, settleRotation, writeRotation } from "../../lib/trust/rotation.js";
import { newSecret, parseSecret, writeSecretFile } from "../../lib/trust/secret.js";

/** lib/trust/network-key.ts during and after a rotation, and lib/trust/rotation.ts's record. */

const keyOf = (secret: string) => new NetworkKey(parseSecret(secret, "test"));

describe("a key during a rotation", () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  test("takes both secrets until the window's end, dials the next first, then only the next counts", () => {
    const [s1, s2] = [newSecret(), newSecret()];
    const key = keyOf(s1);
    const old = keyOf(s1);
    const fresh = keyOf(s2);
    const oldIdentity = old.identity;
    key.rotate(s2, Date.now() + 10_000);
    expect(key.id).toBe(keyIdOf(s1));
    expect(key.nextId).toBe(keyIdOf(s2));
    expect(key.pskFor(oldIdentity)).toEqual(old.psk);
    expect(key.pskFor(fresh.identity)).toEqual(fresh.psk);
    expect(key.dialOrder().map((k) => k.id)).toEqual([keyIdOf(s2), keyIdOf(s1)]);
    // Announcements: signed with the next, taken under either.
    expect(key.mac("text")).toBe(fresh.mac("text"));
    expect(key.verify("text", old.mac("text"))).toBe(true);
    expect(key.verify("text", fresh.mac("text"))).toBe(true);
    vi.advanceTimersByTime(10_000);
    expect(key.id).toBe(keyIdOf(s2));
    expect(key.nextId).toBeUndefined();
    expect(key.pskFor(oldIdentity)).toBeUndefined();
    expect(key.pskFor(fresh.identity)).toEqual(fresh.psk);
    expect(key.verify("text", old.mac("text"))).toBe(false);
    expect(key.secretText()).toBe(s2);
    // The retired secret is only named, to the host that still has it.
    expect(key.retiredAt(keyIdOf(s1))).toBe(1_010_000);
    expect(key.retiredAt("text", old.mac("text"))).toBe(1_010_000);
    expect(key.retiredAt(keyIdOf(newSecret()))).toBeUndefined();
  });

  test("a rotation to the secret in force, or one known already, changes nothing", () => {
    const [s1, s2] = [newSecret(), newSecret()];
    const key = keyOf(s1);
    key.rotate(s1, Date.now() + 1000);
    expect(key.nextId).toBeUndefined();
    key.rotate(s2, Date.now() + 1000);
    key.rotate(s2, Date.now() + 99_000);
    expect(key.rotationEnds).toBe(Date.now() + 1000);
  });
});

describe("the rotation's record", () => {
  let folder: string;
  beforeEach(() => (folder = mkdtempSync(join(tmpdir(), "labc-rotation-"))));
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  test("sealed under the current secret: opened by its holders only", () => {
    const [s1, s2] = [newSecret(), newSecret()];
    const record = { next: s2, from: keyIdOf(s1), until: Date.now() + 60_000, by: "host1", at: Date.now() };
    const box = sealRotation(keyOf(s1), record);
    expect(box).not.toContain(s2.slice(6));
    expect(openRotation(keyOf(s1), box)).toEqual(record);
    expect(openRotation(keyOf(newSecret()), box)).toBeUndefined();
    expect(openRotation(keyOf(s1), `${box.slice(0, -4)}AAAA`)).toBeUndefined();
  });

  test("recorded 0600, applied to keys of the old secret, and written into the secret file once the window ended", () => {
    const [s1, s2] = [newSecret(), newSecret()];
    writeSecretFile(join(folder, "secret"), s1);
    writeRotation(folder, { next: s2, from: keyIdOf(s1), until: Date.now() + 200, by: "host1", at: Date.now() });
    expect(statSync(rotationFile(folder)).mode & 0o777).toBe(0o600);
    const key = keyOf(s1);
    applyRotation(key, folder);
    expect(key.nextId).toBe(keyIdOf(s2));
    // Another secret's key does not take it.
    const other = keyOf(newSecret());
    applyRotation(other, folder);
    expect(other.nextId).toBeUndefined();
    expect(settleRotation(folder)).toBeUndefined();
    expect(settleRotation(folder, Date.now() + 1000)).toMatch(/holds the new secret/);
    expect(readFileSync(join(folder, "secret"), "utf8").trim()).toBe(s2);
    expect(statSync(join(folder, "secret")).mode & 0o777).toBe(0o600);
    // The record stays: a process started with the old secret (its environment) moves on too.
    expect(readRotation(folder)?.next).toBe(s2);
  });

  test("a secret file that holds another secret is left, with the reason", () => {
    const [s1, s2] = [newSecret(), newSecret()];
    writeSecretFile(join(folder, "secret"), newSecret());
    writeRotation(folder, { next: s2, from: keyIdOf(s1), until: Date.now() - 1, by: "host1", at: Date.now() });
    expect(settleRotation(folder)).toMatch(/comes from LABC_SECRET or a config file/);
  });
});
