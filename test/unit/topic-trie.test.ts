import { describe, expect, test } from "vitest";
import { checkPattern, parseSubscription, subscriptionKey, TopicTrie } from "../../lib/pool/topic-trie.js";
import { FunctionPool } from "../../lib/pool/function-pool.js";

// pattern, topic, matches? — the conformance table any matcher must pass.
const TABLE: [string, string, boolean][] = [
  ["lab.temp", "lab.temp", true],
  ["lab.temp", "lab.temp.x", false],
  ["lab.temp", "lab", false],
  ["lab.*", "lab.temp", true],
  ["lab.*", "lab", false],
  ["lab.*", "lab.temp.x", false],
  ["*.temp", "lab.temp", true],
  ["lab.*.x", "lab.temp.x", true],
  ["lab.*.x", "lab.temp.y", false],
  ["lab.#", "lab", true],
  ["lab.#", "lab.temp", true],
  ["lab.#", "lab.temp.x.y", true],
  ["lab.#", "labx.temp", false],
  ["#", "anything.at.all", true],
  ["lab/temp", "lab.temp", true],
  ["lab.temp", "lab/temp", true],
  ["__proto__.constructor", "__proto__.constructor", true],
  ["__proto__.*", "constructor.x", false],
];

describe("TopicTrie", () => {
  test.each(TABLE)("%s matches %s: %s", (pattern, topic, expected) => {
    const trie = new TopicTrie<string>();
    trie.add(pattern, "v");
    expect(trie.match(topic).has("v")).toBe(expected);
  });

  test("collects every matching value once", () => {
    const trie = new TopicTrie<string>();
    trie.add("lab.temp.*", "a");
    trie.add("lab.#", "b");
    trie.add("lab.temp.*", "b");
    trie.add("lab.light", "c");
    expect([...trie.match("lab.temp.room1")].sort()).toEqual(["a", "b"]);
  });

  test("removing prunes, and leaves other patterns alone", () => {
    const trie = new TopicTrie<string>();
    trie.add("a.b.c", "x");
    trie.add("a.b", "y");
    expect(trie.remove("a.b.c", "x")).toBe(true);
    expect(trie.remove("a.b.c", "x")).toBe(false);
    expect(trie.match("a.b.c").size).toBe(0);
    expect(trie.match("a.b").has("y")).toBe(true);
  });

  test.each(["lab..temp", "lab.#.x", "lab.te*", ""])("refuses the pattern %j", (pattern) => {
    expect(() => new TopicTrie().add(pattern, 1)).toThrow(/topic pattern/);
  });

  test("refuses wildcards in a published topic", () => {
    expect(() => new TopicTrie().match("lab.*")).toThrow(/wildcards/);
  });
});

describe("TopicTrie.matches (remembered)", () => {
  test("is forgotten when the subscriptions change", () => {
    const trie = new TopicTrie<string>();
    trie.add("a.*", "x");
    expect(trie.matches("a.b")).toEqual(["x"]);
    trie.add("a.#", "y");
    expect([...trie.matches("a.b")].sort()).toEqual(["x", "y"]);
    trie.remove("a.*", "x");
    expect(trie.matches("a.b")).toEqual(["y"]);
    expect(() => trie.matches("a.*")).toThrow(/wildcards/);
  });

  test("the topic asked last is remembered, and a topic that is no string is still refused after a change", () => {
    const trie = new TopicTrie<string>();
    trie.add("a", "x");
    expect(trie.matches("a")).toEqual(["x"]);
    expect(trie.matches("a")).toBe(trie.matches("a"));
    trie.remove("a", "x");
    // A JavaScript caller's publish(undefined): the memory of the last topic must not answer it.
    expect(() => trie.matches(undefined as unknown as string)).toThrow();
    expect(trie.matches("a")).toEqual([]);
  });
});

describe("queue-group subscriptions", () => {
  test("a group subscription is written `pattern #group`, which no plain pattern can be", () => {
    for (const [pattern, group] of [["jobs.resize", "workers"], ["lab.#", "a.b-c_1"], ["*", "g"], ["room 1.temp", "x"]] as const) {
      const key = subscriptionKey(pattern, group);
      expect(parseSubscription(key)).toEqual({ pattern, group });
      expect(() => checkPattern(key)).toThrow(/wildcards must be whole words/);
    }
    expect(parseSubscription("lab.#")).toEqual({ pattern: "lab.#", group: undefined });
    expect(subscriptionKey("lab.x", undefined)).toBe("lab.x");
    for (const bad of ["", "two words", "a#b", "x".repeat(129)]) expect(() => subscriptionKey("t", bad)).toThrow(/queue group/);
  });

  test("the pool keeps group members apart from plain subscribers, and withdraws them", () => {
    const pool = new FunctionPool();
    const server = (id: string) => pool.addServer({ id, host: "h", hostId: "h", address: "127.0.0.1", port: 1, pid: 1 });
    const [a, b] = [server("a"), server("b")];
    pool.announce(a, [], ["jobs.*", "jobs.# #workers"]);
    pool.announce(b, [], ["jobs.resize #workers", "jobs.resize #audit"]);
    expect(pool.subscribers("jobs.resize")).toEqual([a]);
    expect(pool.groupMembers("jobs.resize").map((m) => `${m.server.id}:${m.group}`).sort()).toEqual(["a:workers", "b:audit", "b:workers"]);
    pool.withdraw(b, [], ["jobs.resize #workers"]);
    expect(pool.groupMembers("jobs.resize").map((m) => `${m.server.id}:${m.group}`).sort()).toEqual(["a:workers", "b:audit"]);
    pool.removeServer("a");
    expect(pool.groupMembers("jobs.resize").map((m) => `${m.server.id}:${m.group}`)).toEqual(["b:audit"]);
    expect(pool.subscribers("jobs.resize")).toEqual([]);
  });
});
