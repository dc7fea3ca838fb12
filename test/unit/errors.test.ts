import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, test } from "vitest";
import * as errors from "../../lib/errors.js";
import { LabcError } from "../../lib/errors.js";
import { errorFromPayload, errorToPayload } from "../../lib/wire/error-payload.js";
import { PACKAGE_ROOT } from "../../lib/paths.js";

// class, an instance, its stable code, retryable?
const TABLE: [string, LabcError, string, boolean][] = [
  ["RemoteError", new errors.RemoteError("boom", { name: "TypeError", code: "E_X" }), "LABC_REMOTE_ERROR", false],
  ["NoSuchFunctionError", new errors.NoSuchFunctionError("f", "host"), "LABC_NO_SUCH_FUNCTION", false],
  ["NoSuchHostError", new errors.NoSuchHostError("computer1", ["a"]), "LABC_NO_SUCH_HOST", true],
  ["TimeoutError", new errors.TimeoutError("f", 100), "LABC_TIMEOUT", true],
  ["ConnectionLostError", new errors.ConnectionLostError("server x", "f"), "LABC_CONNECTION_LOST", true],
  ["BadArgumentsError", new errors.BadArgumentsError("no"), "LABC_BAD_ARGUMENTS", false],
  ["FrameTooLargeError", new errors.FrameTooLargeError(10, 5), "LABC_FRAME_TOO_LARGE", false],
  ["MalformedFrameError", new errors.MalformedFrameError("x"), "LABC_BAD_FRAME", false],
  ["ConfigError", new errors.ConfigError("f.toml", "a.b", "bad"), "LABC_CONFIG", false],
  ["RouterUnavailableError", new errors.RouterUnavailableError("127.0.0.1:1"), "LABC_NO_ROUTER", true],
  ["ServiceLoadError", new errors.ServiceLoadError("x.ts", "bad"), "LABC_SERVICE_LOAD", false],
  ["ClosedError", new errors.ClosedError("x"), "LABC_CLOSED", false],
  ["LimitError", new errors.LimitError("in_flight", "too many"), "LABC_LIMIT", false],
  ["BadMessageError", new errors.BadMessageError("announce", "functions must be an array"), "LABC_BAD_MESSAGE", false],
  ["CancelledError", new errors.CancelledError("f", new Error("interrupted")), "LABC_CANCELLED", false],
  ["NoCallContextError", new errors.NoCallContextError(), "LABC_NO_CONTEXT", false],
  ["WrongCodeError", new errors.WrongCodeError("10.0.0.1:55556", "wrong"), "LABC_WRONG_CODE", false],
  ["NoInviteError", new errors.NoInviteError("none"), "LABC_NO_INVITE", false],
];

describe("errors", () => {
  test.each(TABLE)("%s has a stable code and its retryable flag", (name, error, code, retryable) => {
    expect(error.name).toBe(name);
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
    expect(error).toBeInstanceOf(LabcError);
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf((errors as unknown as Record<string, Function>)[name]!);
  });

  test("instanceof works for an error made by another copy of the module", async () => {
    // The compiled copy in dist/ is a second module, as a service's own copy of labc would be.
    const other = await import(/* @vite-ignore */ pathToFileURL(join(PACKAGE_ROOT, "dist/lib/errors.js")).href);
    const foreign = new other.TimeoutError("f", 1);
    expect(other.TimeoutError).not.toBe(errors.TimeoutError);
    expect(foreign).toBeInstanceOf(errors.TimeoutError);
    expect(foreign).toBeInstanceOf(LabcError);
    expect(foreign).not.toBeInstanceOf(errors.NoSuchFunctionError);
  });

  test("labc errors travel and come back as their own class", () => {
    const back = errorFromPayload(errorToPayload(new errors.NoSuchFunctionError("g", "host"), false), "f", "server x");
    expect(back).toBeInstanceOf(errors.NoSuchFunctionError);
    expect(back.message).toContain('"g"');
  });

  test("anything else comes back as a RemoteError with the remote name, code and message", () => {
    const thrown = Object.assign(new TypeError("bad input"), { code: "E_INPUT" });
    const back = errorFromPayload(errorToPayload(thrown, false), "parse", "server x") as errors.RemoteError;
    expect(back).toBeInstanceOf(errors.RemoteError);
    expect(back.remoteName).toBe("TypeError");
    expect(back.remoteCode).toBe("E_INPUT");
    expect(back.message).toBe("parse on server x: bad input");
    expect(back.remoteStack).toBeUndefined();
    const withStack = errorFromPayload(errorToPayload(thrown, true), "parse", "x") as errors.RemoteError;
    expect(withStack.remoteStack).toContain("TypeError: bad input");
  });

  test("a payload naming a prototype key gets a RemoteError, nothing more", () => {
    for (const name of ["__proto__", "constructor", "toString"]) {
      expect(errorFromPayload({ name, message: "m" }, "f", "x")).toBeInstanceOf(errors.RemoteError);
    }
  });
});
