import { describe, expect, test } from "vitest";
import { Kind } from "../../lib/wire/message.js";
import { problemWith } from "../../lib/wire/validate.js";

const entry = { name: "echo", scope: "network", visibility: "public" };
const server = { id: "s1", host: "h", hostId: "h1", address: "127.0.0.1", port: 4000, pid: 7, functions: [entry], topics: ["lab.#"] };
const hello = { v: 1, role: "server", id: "s1", pid: 7, host: "h", hostId: "h1", port: 4000 };

// kind, body, the problem expected (undefined: accepted)
const TABLE: [keyof typeof Kind, unknown, RegExp | undefined][] = [
  ["hello", hello, undefined],
  ["hello", { ...hello, role: "king" }, /role must be one of/],
  ["hello", { ...hello, port: 70000 }, /port must be a port/],
  ["hello", { ...hello, id: "" }, /id must not be empty/],
  ["hello", { ...hello, hostId: undefined }, /hostId is missing/],
  ["req", { fn: "echo", args: [1, { deep: [null] }] }, undefined],
  ["req", { fn: "echo", args: [], target: "s1", timeoutMs: 500 }, undefined],
  ["req", { fn: 5, args: [] }, /fn must be a string/],
  ["req", { fn: "echo", args: "x" }, /args must be an array/],
  ["req", { fn: "echo", args: [], timeoutMs: -1 }, /timeoutMs must be a number/],
  ["req", { fn: "x".repeat(2000), args: [] }, /over 1024 characters/],
  ["pub", { topic: "lab.temp", args: [21] }, undefined],
  ["pub", { topic: null, args: [] }, /topic is missing/],
  ["pub", { topic: "jobs.resize", args: [1], groups: ["workers"] }, undefined],
  ["pub", { topic: "jobs.resize", args: [1], groups: "workers" }, /groups must be an array/],
  ["pub", { topic: "jobs.resize", args: [1], groups: [""] }, /groups\[0\] must not be empty/],
  ["exc", { name: "TypeError", message: "boom", code: "E", data: { a: 1 } }, undefined],
  ["exc", { name: "TypeError", message: 5 }, /message must be a string/],
  ["announce", { functions: [entry], topics: ["lab.#"] }, undefined],
  ["announce", { server }, undefined],
  ["announce", { functions: "echo" }, /functions must be an array/],
  ["announce", { functions: ["echo"] }, /functions\[0\] must be an object/],
  ["announce", { functions: [null] }, /functions\[0\] must be an object/],
  ["announce", { functions: [{ ...entry, visibility: "hidden" }] }, /functions\[0\]\.visibility must be one of/],
  ["announce", { server: { ...server, functions: [{ name: "f" }] } }, /server\.functions\[0\]\.scope is missing/],
  ["announce", { topics: [5] }, /topics\[0\] must be a string/],
  ["withdraw", { server: "s1", functions: ["echo"], topics: [] }, undefined],
  ["withdraw", { functions: [{ name: "echo" }] }, /functions\[0\] must be a string/],
  ["pool", { servers: [server] }, undefined],
  ["pool", { servers: [{ ...server, port: "4000" }] }, /servers\[0\]\.port must be a port/],
  ["pool", {}, /servers is missing/],
  ["death", { server: "s1" }, undefined],
  ["death", { host: 5 }, /host must be a string/],
  ["suspect", { server: "s1", suspect: true }, undefined],
  ["suspect", { server: "s1", suspect: "yes" }, /suspect must be true or false/],
  ["ping", {}, undefined],
  ["cancel", {}, undefined],
];

describe("every body is checked against its kind", () => {
  test.each(TABLE)("%s %j", (kind, body, problem) => {
    const found = problemWith(Kind[kind], body as Record<string, unknown>);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toMatch(problem);
  });
});
