import { createHmac, hkdfSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, test, vi } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { networkKey } from "../../lib/trust/network-key.js";
import { newSecret, parseSecret } from "../../lib/trust/secret.js";
import { AnnouncementCheck, announcementProblem, sign, signedText, warnIfUnannounceable, type Announcement } from "../../lib/trust/signed-announcement.js";

/** The test vector of docs/protocol.md#test-vector, as the page gives it. */
function documentedVector(): Record<string, string> {
  const page = readFileSync(join(PACKAGE_ROOT, "docs", "protocol.md"), "utf8");
  const section = page.slice(page.indexOf("### Test vector"));
  const block = section.slice(section.indexOf("```\n") + 4, section.indexOf("\n```", section.indexOf("```\n") + 4));
  const vector: Record<string, string> = {};
  for (const line of block.split("\n")) {
    const [, name, value] = /^(\S+(?: id)?)\s{2,}(\S.*)$/.exec(line) ?? [];
    if (name) vector[name] = value!;
  }
  return vector;
}

const key = networkKey(newSecret());
const host = (addresses = ["10.0.0.1", "192.168.1.5"]): Announcement => ({ hostId: "id-h1", name: "h1", port: 55555, addresses });

afterEach(() => vi.restoreAllMocks());

describe("the signed text", () => {
  test("docs/protocol.md's test vector: the text and MAC the implementation makes, and the spec computed by hand", () => {
    const vector = documentedVector();
    expect(Object.keys(vector).sort()).toEqual(["addresses", "hostId", "key id", "mac", "name", "port", "secret", "t", "text"]);
    const documented: Announcement = { hostId: vector.hostId!, name: vector.name!, port: Number(vector.port), addresses: vector.addresses!.split(",") };
    const signed = sign({ ...documented }, networkKey(vector.secret!), Number(vector.t));
    const text = vector.text!.replaceAll("\\n", "\n");
    expect(networkKey(vector.secret!).id).toBe(vector["key id"]);
    expect(signedText(signed)).toBe(text);
    expect(signed.mac).toBe(vector.mac);
    // From the page alone: HKDF for the key, HMAC-SHA256 cut to 16 bytes, base64url.
    const macKey = Buffer.from(hkdfSync("sha256", parseSecret(vector.secret!, "vector"), "labc network", "announcement mac", 32));
    expect(createHmac("sha256", macKey).update(text, "utf8").digest().subarray(0, 16).toString("base64url")).toBe(vector.mac);
    expect(new AnnouncementCheck(networkKey(vector.secret!), { repeats: false }).accept(signed, "192.168.1.20", Number(vector.t))).toBe(true);
  });

  test("covers the addresses: any edit of them is refused", () => {
    const signed = sign(host(), key, 1000);
    for (const addresses of [["10.0.0.66"], ["10.0.0.1"], ["10.0.0.1", "192.168.1.5", "10.0.0.66"], ["192.168.1.5", "10.0.0.1"], []]) {
      const check = new AnnouncementCheck(key, { repeats: false });
      expect(check.accept({ ...signed, addresses }, "10.0.0.66", 1000)).toBe(false);
    }
    expect(new AnnouncementCheck(key, { repeats: false }).accept(signed, "10.0.0.66", 1000)).toBe(true);
  });

  test("a host's only signed addresses are dialed: the packet's source first when it is one of them, never otherwise", () => {
    const check = new AnnouncementCheck(key, { repeats: false });
    const signed = sign(host(), key, 1000);
    expect(check.accept(signed, "10.0.0.66", 1000)).toBe(true);
    expect(check.dialable(signed, "10.0.0.66", ["10.0.0.66", "10.0.0.67"])).toEqual(["10.0.0.1", "192.168.1.5"]);
    expect(check.dialable(signed, "192.168.1.5", ["10.0.0.66"])).toEqual(["192.168.1.5", "10.0.0.1"]);
    expect(check.dialable(signed, undefined)).toEqual(["10.0.0.1", "192.168.1.5"]);
    // An open network dials as before: the source first, then what the announcement's transport gives.
    const open = new AnnouncementCheck(undefined, { repeats: false });
    expect(open.accept(host(), "10.0.0.66")).toBe(true);
    expect(open.dialable(host(), "10.0.0.66", ["10.0.0.67", "10.0.0.66"])).toEqual(["10.0.0.66", "10.0.0.67"]);
    expect(open.dialable(host(), "10.0.0.1")).toEqual(["10.0.0.1", "192.168.1.5"]);
  });

  test("no field can smuggle a line into another: control characters, separators and non-canonical values are refused", () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const bad: Partial<Announcement>[] = [
      { hostId: "id-h1\n55555" },
      { hostId: "" },
      { hostId: "x".repeat(256) },
      { name: "h1\n10.0.0.66" },
      { name: "h1\r" },
      { name: "h1\u0000" },
      { name: "\u001b[31mh1" },
      { name: "h1\u0085" },
      { name: "h1\u2028" },
      { port: 0 },
      { port: 65536 },
      { port: 55555.5 },
      { port: "55555" as unknown as number },
      { addresses: ["10.0.0.1,10.0.0.66"] },
      { addresses: ["10.0.0.1\n"] },
      { addresses: ["010.0.0.1"] },
      { addresses: ["lab.example.com"] },
      { addresses: "10.0.0.1" as unknown as string[] },
      { addresses: Array.from({ length: 33 }, (_, i) => `10.0.0.${i}`) },
      { t: 1.5 },
      { t: -1 },
    ];
    for (const fields of bad) {
      const announcement = { ...host(), ...fields };
      expect(announcementProblem(announcement), JSON.stringify(fields)).toBeDefined();
      // Even signed with the key (as a member with a broken name would), it is not taken...
      const signed = Array.isArray(announcement.addresses) ? sign({ ...announcement }, key, fields.t ?? 1000) : { ...announcement, t: 1000, mac: "x" };
      expect(new AnnouncementCheck(key, { repeats: false }).accept(signed, "10.0.0.9", 1000), JSON.stringify(fields)).toBe(false);
      // ...nor unsigned in an open network.
      expect(new AnnouncementCheck(undefined, { repeats: false }).accept(announcement, "10.0.0.9"), JSON.stringify(fields)).toBe(false);
    }
    // The refusal does not repeat a stranger's bytes.
    const said = stderr.mock.calls.map(([chunk]) => String(chunk)).join("");
    expect(said).not.toMatch(/[\u0000\u001b\u0085\u2028]/);
    expect(said).not.toContain("10.0.0.66");
    expect(announcementProblem(host())).toBeUndefined();
    expect(announcementProblem({ ...host(), name: "", addresses: [] })).toBeUndefined();
  });

  test("a host whose own name others would refuse is told so at start", () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    warnIfUnannounceable({ hostId: "id-h1", name: "h1", port: 55555 }, "udp beacons");
    expect(stderr).not.toHaveBeenCalled();
    warnIfUnannounceable({ hostId: "id-h1", name: "lab\tpi", port: 55555 }, "udp beacons");
    expect(String(stderr.mock.calls[0]?.[0])).toMatch(/udp beacons: this host's announcements have a name that is not .* other hosts will ignore them/);
  });
});

describe("replays", () => {
  test("the same beacon twice, or an older one, is refused; mDNS may repeat the latest but not go back", () => {
    const check = new AnnouncementCheck(key, { repeats: false, maxAgeMs: 300_000 });
    const first = sign(host(), key, 1000);
    const second = sign(host(), key, 2000);
    expect(check.accept(second, "10.0.0.1", 2000)).toBe(true);
    expect(check.accept({ ...second }, "10.0.0.66", 2100)).toBe(false);
    expect(check.accept(first, "10.0.0.66", 2100)).toBe(false);
    const mdns = new AnnouncementCheck(key, { repeats: true, maxAgeMs: 600_000 });
    expect(mdns.accept(second, "10.0.0.1", 2000)).toBe(true);
    expect(mdns.accept(second, "10.0.0.1", 9000)).toBe(true);
    expect(mdns.accept(first, "10.0.0.66", 9000)).toBe(false);
  });

  test("a router that restarted takes a replay within the window, but can only be sent to the host's own addresses", () => {
    const recorded = sign(host(), key, 1000);
    const restarted = new AnnouncementCheck(key, { repeats: false, maxAgeMs: 300_000 });
    expect(restarted.accept(recorded, "10.0.0.66", 200_000)).toBe(true);
    expect(restarted.dialable(recorded, "10.0.0.66")).toEqual(["10.0.0.1", "192.168.1.5"]);
    // Past the window it is refused, beacon (5 min) or mDNS record (10 min).
    expect(new AnnouncementCheck(key, { repeats: false, maxAgeMs: 300_000 }).accept(recorded, "10.0.0.66", 302_000)).toBe(false);
    expect(new AnnouncementCheck(key, { repeats: true, maxAgeMs: 600_000 }).accept(recorded, "10.0.0.66", 602_000)).toBe(false);
    expect(new AnnouncementCheck(key, { repeats: true, maxAgeMs: 600_000 }).accept(recorded, "10.0.0.66", 590_000)).toBe(true);
  });

  test("an announcement signed by a labc of version 1 (addresses not signed) is refused, and the log says so", () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const old = { ...host(), t: 5000, mac: key.mac("labc announcement\nid-h1\nh1\n55555\n5000") };
    expect(new AnnouncementCheck(key, { repeats: false }).accept(old, "10.0.0.77", 5000)).toBe(false);
    expect(String(stderr.mock.calls.at(-1)?.[0])).toMatch(/refused 10\.0\.0\.77: an announcement of host id-h1 signed by an older labc, whose signature leaves out the addresses/);
  });
});
