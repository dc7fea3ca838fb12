/**
 * Typed errors with stable codes. Every error labc raises is a `LabcError`; `code` is stable
 * across versions and safe to branch on, `retryable` says whether the same call may succeed
 * if simply tried again.
 *
 * `instanceof` works across two copies of this module (a service loaded from another folder
 * brings its own): each class tags its prototype with a registered symbol and checks the tag.
 */

const kTag = Symbol.for("labc.error.tag");

type Tagged = { [kTag]: symbol };

/** Names an error class and tags it, so that `instanceof` works across copies of this module. */
function named(cls: Function & Partial<Tagged>, name: string): void {
  const symbol = Symbol.for(`labc.error.${name}`);
  Object.defineProperty(cls, kTag, { value: symbol });
  Object.defineProperty(cls.prototype, symbol, { value: true });
  cls.prototype.name = name;
}

export class LabcError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }

  static [Symbol.hasInstance](this: Function & Partial<Tagged>, value: unknown): boolean {
    const symbol = this[kTag];
    return symbol !== undefined && typeof value === "object" && value !== null && symbol in value;
  }

  /** Fields beyond name, code and message that travel with the error when sent to a caller. */
  get data(): Record<string, unknown> | undefined {
    return undefined;
  }
}
named(LabcError, "LabcError");

/** The remote function threw something that is not a LabcError. */
export class RemoteError extends LabcError {
  /** `name` of the error thrown remotely (`TypeError`, a user class name...). */
  readonly remoteName: string;
  /** `code` of the error thrown remotely, when it had one (`ENOENT`...). */
  readonly remoteCode: string | undefined;
  /** The remote stack, sent only when the server's config allows it. */
  readonly remoteStack: string | undefined;

  constructor(message: string, remote: { name?: string; code?: string; stack?: string } = {}) {
    super("LABC_REMOTE_ERROR", message);
    this.remoteName = remote.name ?? "Error";
    this.remoteCode = remote.code;
    this.remoteStack = remote.stack;
  }

  override get data() {
    return { remoteName: this.remoteName, remoteCode: this.remoteCode };
  }
}
named(RemoteError, "RemoteError");

export class NoSuchFunctionError extends LabcError {
  constructor(readonly functionName: string, readonly scope: string, detail?: string) {
    super(
      "LABC_NO_SUCH_FUNCTION",
      `no function "${functionName}" in ${scope} scope${detail ? ` (${detail})` : ""}`,
    );
  }
  override get data() {
    return { function: this.functionName, scope: this.scope };
  }
}
named(NoSuchFunctionError, "NoSuchFunctionError");

export class NoSuchHostError extends LabcError {
  constructor(readonly hostName: string, known: string[]) {
    super(
      "LABC_NO_SUCH_HOST",
      `no host "${hostName}" is known${known.length ? ` (known: ${known.join(", ")})` : ""}`,
      { retryable: true },
    );
  }
  override get data() {
    return { host: this.hostName };
  }
}
named(NoSuchHostError, "NoSuchHostError");

export class NoSuchServiceError extends LabcError {
  constructor(readonly query: string, message: string) {
    super("LABC_NO_SUCH_SERVICE", message);
  }
  override get data() {
    return { service: this.query };
  }
}
named(NoSuchServiceError, "NoSuchServiceError");

export class StateMismatchError extends LabcError {
  constructor(readonly functionName: string, readonly state: string, running: string[]) {
    super(
      "LABC_STATE_MISMATCH",
      `no server runs "${functionName}" in state ${state}` +
        (running.length ? ` (running: ${running.join("; ")})` : ""),
    );
  }
  override get data() {
    return { function: this.functionName, state: this.state };
  }
}
named(StateMismatchError, "StateMismatchError");

export class TimeoutError extends LabcError {
  constructor(readonly functionName: string, readonly timeoutMs: number, readonly target?: string) {
    super(
      "LABC_TIMEOUT",
      `call to "${functionName}"${target ? ` on ${target}` : ""} timed out after ${timeoutMs} ms`,
      { retryable: true },
    );
  }
  override get data() {
    return { function: this.functionName, timeoutMs: this.timeoutMs, target: this.target };
  }
}
named(TimeoutError, "TimeoutError");

export class ConnectionLostError extends LabcError {
  constructor(readonly target: string, readonly functionName?: string, cause?: unknown) {
    super(
      "LABC_CONNECTION_LOST",
      functionName
        ? `connection to ${target} lost during call to "${functionName}"`
        : `connection to ${target} lost`,
      { cause, retryable: true },
    );
  }
  override get data() {
    return { target: this.target, function: this.functionName };
  }
}
named(ConnectionLostError, "ConnectionLostError");

export class BadArgumentsError extends LabcError {
  constructor(message: string) {
    super("LABC_BAD_ARGUMENTS", message);
  }
}
named(BadArgumentsError, "BadArgumentsError");

export class FrameTooLargeError extends LabcError {
  constructor(readonly declared: number, readonly limit: number) {
    super("LABC_FRAME_TOO_LARGE", `frame of ${declared} bytes exceeds the limit of ${limit} bytes`);
  }
}
named(FrameTooLargeError, "FrameTooLargeError");

export class MalformedFrameError extends LabcError {
  constructor(message: string, cause?: unknown) {
    super("LABC_BAD_FRAME", `malformed frame: ${message}`, { cause });
  }
}
named(MalformedFrameError, "MalformedFrameError");

/** A peer passed one of the limits of docs/reliability.md; its connection is closed. */
export class LimitError extends LabcError {
  constructor(readonly limit: string, detail: string) {
    super("LABC_LIMIT", `limit ${limit}: ${detail}`);
  }
  override get data() {
    return { limit: this.limit };
  }
}
named(LimitError, "LimitError");

/** A message whose body does not fit its kind (docs/protocol.md): it was not acted on. */
export class BadMessageError extends LabcError {
  constructor(readonly kind: string, detail: string) {
    super("LABC_BAD_MESSAGE", `bad ${kind} message: ${detail}`);
  }
  override get data() {
    return { kind: this.kind };
  }
}
named(BadMessageError, "BadMessageError");

/** The caller gave up on a call (its AbortSignal fired); the server was told. */
export class CancelledError extends LabcError {
  constructor(readonly functionName: string, reason?: unknown) {
    super("LABC_CANCELLED", `call to "${functionName}" was cancelled${reasonText(reason)}`, { cause: reason });
  }
  override get data() {
    return { function: this.functionName };
  }
}
named(CancelledError, "CancelledError");

/** A function returned a stream to a call that waits for one value. */
export class StreamRequiredError extends LabcError {
  constructor(readonly functionName: string) {
    super("LABC_STREAM_REQUIRED", `"${functionName}" returns a stream: read it with labc.stream("${functionName}", ...)`);
  }
  override get data() {
    return { function: this.functionName };
  }
}
named(StreamRequiredError, "StreamRequiredError");

/** A `labc.map()` item whose server was lost while doing it, not sent again (not idempotent). */
export class ItemLostError extends LabcError {
  constructor(readonly functionName: string, readonly index: number, readonly server: string, cause: unknown) {
    super(
      "LABC_ITEM_LOST",
      `"${functionName}" item ${index}: ${server} was lost while doing it; it may or may not have been done, and is not sent again because "${functionName}" is not registered idempotent: true`,
      { cause },
    );
  }
  override get data() {
    return { function: this.functionName, index: this.index, server: this.server };
  }
}
named(ItemLostError, "ItemLostError");

/** Items of a `labc.map()` failed; `results` has every item's outcome, in input order. */
export class MapError extends LabcError {
  constructor(readonly functionName: string, readonly results: readonly { index: number; ok: boolean; value?: unknown; error?: Error }[]) {
    const failed = results.filter((result) => !result.ok);
    super(
      "LABC_MAP_FAILED",
      `"${functionName}": ${failed.length} of ${results.length} item(s) failed (the first, item ${failed[0]?.index}: ${failed[0]?.error?.message})`,
    );
  }
  override get data() {
    return { function: this.functionName };
  }
}
named(MapError, "MapError");

export class NoCallContextError extends LabcError {
  constructor() {
    super(
      "LABC_NO_CONTEXT",
      "labc.context() was called outside a call: read it at the start of a registered function, before its first await, and keep it",
    );
  }
}
named(NoCallContextError, "NoCallContextError");

function reasonText(reason: unknown): string {
  if (reason === undefined) return "";
  const text = reason instanceof Error ? reason.message : String(reason);
  return text && !/aborted/i.test(text) ? `: ${text}` : "";
}

export class ConfigError extends LabcError {
  constructor(readonly file: string, readonly key: string | undefined, message: string) {
    super("LABC_CONFIG", `${file}${key ? `: ${key}` : ""}: ${message}`);
  }
}
named(ConfigError, "ConfigError");

export class RouterUnavailableError extends LabcError {
  constructor(readonly address: string, cause?: unknown) {
    super("LABC_NO_ROUTER", `no labc router answers on ${address}`, { cause, retryable: true });
  }
}
named(RouterUnavailableError, "RouterUnavailableError");

export class ServiceLoadError extends LabcError {
  constructor(readonly file: string, readonly reason: string, cause?: unknown) {
    super("LABC_SERVICE_LOAD", `${file}: ${reason}`, { cause });
  }
  override get data() {
    return { file: this.file, reason: this.reason };
  }
}
named(ServiceLoadError, "ServiceLoadError");

/** The function refuses this caller: what it asks needs a permission this network does not give. */
export class NotPermittedError extends LabcError {
  constructor(message: string) {
    super("LABC_NOT_PERMITTED", message);
  }
}
named(NotPermittedError, "NotPermittedError");

/**
 * A link could not be secured: the peer has another network secret, or none while we have one
 * (or the other way round). Never retryable: the same secret fails the same way.
 */
export class NotTrustedError extends LabcError {
  constructor(readonly address: string, reason: string, cause?: unknown) {
    super("LABC_NOT_TRUSTED", `${address}: ${reason}`, { cause });
  }
  override get data() {
    return { address: this.address };
  }
}
named(NotTrustedError, "NotTrustedError");

/**
 * An invite's exchange failed its key confirmation: the code typed on the new host is not the
 * inviting host's. The invite is spent (one guess per code): the inviting host makes a new one.
 */
export class WrongCodeError extends LabcError {
  constructor(readonly address: string, message: string) {
    super("LABC_WRONG_CODE", `${address}: ${message}`);
  }
  override get data() {
    return { address: this.address };
  }
}
named(WrongCodeError, "WrongCodeError");

/**
 * No open invite answered to a code: none was found on the LAN, or the host named has none under
 * that number (it expired, was revoked, or was used).
 */
export class NoInviteError extends LabcError {
  constructor(message: string) {
    super("LABC_NO_INVITE", message);
  }
}
named(NoInviteError, "NoInviteError");

export class ClosedError extends LabcError {
  constructor(what: string) {
    super("LABC_CLOSED", `${what} is closed`);
  }
}
named(ClosedError, "ClosedError");
