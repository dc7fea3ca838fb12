import { describe, expect, test } from "vitest";
import { escapeWord, Subjects } from "../../lib/backplane/subjects.js";

describe("topics as NATS subjects", () => {
  const subjects = new Subjects("main");

  test("a topic's words become tokens; `/` separates words as `.` does", () => {
    expect(subjects.publication("lab.temp.room1")).toBe("labc.main.pub.lab.temp.room1");
    expect(subjects.publication("lab/temp/room1")).toBe("labc.main.pub.lab.temp.room1");
  });

  test("what NATS reserves, and the escape character itself, is escaped byte by byte; different words stay different tokens", () => {
    expect(escapeWord("room 1")).toBe("room~201");
    expect(escapeWord(">")).toBe("~3e");
    expect(escapeWord("~3e")).toBe("~7e3e");
    expect(escapeWord("température")).toBe("temp~c3~a9rature");
    expect(escapeWord("a\tb")).toBe("a~09b");
    const words = ["a b", "a~20b", "a_b", "a-b", "A b"];
    expect(new Set(words.map(escapeWord)).size).toBe(words.length);
    for (const word of words) expect(escapeWord(word)).toMatch(/^[A-Za-z0-9_~-]+$/);
  });

  test("patterns: `*` stays one token, `#` is zero or more words (two subjects), alone it is every topic", () => {
    expect(subjects.publications("lab.*.temp")).toEqual(["labc.main.pub.lab.*.temp"]);
    expect(subjects.publications("lab.#")).toEqual(["labc.main.pub.lab", "labc.main.pub.lab.>"]);
    expect(subjects.publications("#")).toEqual(["labc.main.pub.>"]);
    expect(subjects.publications("lab/*/#")).toEqual(["labc.main.pub.lab.*", "labc.main.pub.lab.*.>"]);
  });

  test("the realm keeps networks on one NATS server apart", () => {
    const other = new Subjects("lab2.optics");
    expect(other.site("id-a1")).toBe("labc.lab2.optics.hosts.id-a1");
    expect(other.publication("x")).toBe("labc.lab2.optics.pub.x");
    expect(subjects.to("host.with.dots")).toBe("labc.main.req.host~2ewith~2edots");
  });
});
