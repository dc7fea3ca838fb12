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

function tag(cls: Function & Partial<Tagged>, name: string): void {
  const symbol = Symbol.for(`labc.error.${name}`);
  Object.defineProperty(cls, kTag, { value: symbol });
  Object.defineProperty(cls.prototype, symbol, { value: true });
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
tag(LabcError, "LabcError");
LabcError.prototype.name = "LabcError";

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
tag(RemoteError, "RemoteError");
RemoteError.prototype.name = "RemoteError";

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
tag(NoSuchFunctionError, "NoSuchFunctionError");
NoSuchFunctionError.prototype.name = "NoSuchFunctionError";

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
tag(NoSuchHostError, "NoSuchHostError");
NoSuchHostError.prototype.name = "NoSuchHostError";

export class NoSuchServiceError extends LabcError {
  constructor(readonly query: string, message: string) {
    super("LABC_NO_SUCH_SERVICE", message);
  }
  override get data() {
    return { service: this.query };
  }
}
tag(NoSuchServiceError, "NoSuchServiceError");
NoSuchServiceError.prototype.name = "NoSuchServiceError";

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
tag(StateMismatchError, "StateMismatchError");
StateMismatchError.prototype.name = "StateMismatchError";

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
tag(TimeoutError, "TimeoutError");
TimeoutError.prototype.name = "TimeoutError";

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
tag(ConnectionLostError, "ConnectionLostError");
ConnectionLostError.prototype.name = "ConnectionLostError";

export class BadArgumentsError extends LabcError {
  constructor(message: string) {
    super("LABC_BAD_ARGUMENTS", message);
  }
}
tag(BadArgumentsError, "BadArgumentsError");
BadArgumentsError.prototype.name = "BadArgumentsError";

export class FrameTooLargeError extends LabcError {
  constructor(readonly declared: number, readonly limit: number) {
    super("LABC_FRAME_TOO_LARGE", `frame of ${declared} bytes exceeds the limit of ${limit} bytes`);
  }
}
tag(FrameTooLargeError, "FrameTooLargeError");
FrameTooLargeError.prototype.name = "FrameTooLargeError";

export class MalformedFrameError extends LabcError {
  constructor(message: string, cause?: unknown) {
    super("LABC_BAD_FRAME", `malformed frame: ${message}`, { cause });
  }
}
tag(MalformedFrameError, "MalformedFrameError");
MalformedFrameError.prototype.name = "MalformedFrameError";

/** A peer passed one of the limits of docs/reliability.md; its connection is closed. */
export class LimitError extends LabcError {
  constructor(readonly limit: string, detail: string) {
    super("LABC_LIMIT", `limit ${limit}: ${detail}`);
  }
  override get data() {
    return { limit: this.limit };
  }
}
tag(LimitError, "LimitError");
LimitError.prototype.name = "LimitError";

/** A message whose body does not fit its kind (docs/protocol.md): it was not acted on. */
export class BadMessageError extends LabcError {
  constructor(readonly kind: string, detail: string) {
    super("LABC_BAD_MESSAGE", `bad ${kind} message: ${detail}`);
  }
  override get data() {
    return { kind: this.kind };
  }
}
tag(BadMessageError, "BadMessageError");
BadMessageError.prototype.name = "BadMessageError";

/** The caller gave up on a call (its AbortSignal fired); the server was told. */
export class CancelledError extends LabcError {
  constructor(readonly functionName: string, reason?: unknown) {
    super("LABC_CANCELLED", `call to "${functionName}" was cancelled${reasonText(reason)}`, { cause: reason });
  }
  override get data() {
    return { function: this.functionName };
  }
}
tag(CancelledError, "CancelledError");
CancelledError.prototype.name = "CancelledError";

/** A function returned a stream to a call that waits for one value. */
export class StreamRequiredError extends LabcError {
  constructor(readonly functionName: string) {
    super("LABC_STREAM_REQUIRED", `"${functionName}" returns a stream: read it with labc.stream("${functionName}", ...)`);
  }
  override get data() {
    return { function: this.functionName };
  }
}
tag(StreamRequiredError, "StreamRequiredError");
StreamRequiredError.prototype.name = "StreamRequiredError";

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
tag(ItemLostError, "ItemLostError");
ItemLostError.prototype.name = "ItemLostError";

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
tag(MapError, "MapError");
MapError.prototype.name = "MapError";

export class NoCallContextError extends LabcError {
  constructor() {
    super(
      "LABC_NO_CONTEXT",
      "labc.context() was called outside a call: read it at the start of a registered function, before its first await, and keep it",
    );
  }
}
tag(NoCallContextError, "NoCallContextError");
NoCallContextError.prototype.name = "NoCallContextError";

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
tag(ConfigError, "ConfigError");
ConfigError.prototype.name = "ConfigError";

export class RouterUnavailableError extends LabcError {
  constructor(readonly address: string, cause?: unknown) {
    super("LABC_NO_ROUTER", `no labc router answers on ${address}`, { cause, retryable: true });
  }
}
tag(RouterUnavailableError, "RouterUnavailableError");
RouterUnavailableError.prototype.name = "RouterUnavailableError";

export class ServiceLoadError extends LabcError {
  constructor(readonly file: string, readonly reason: string, cause?: unknown) {
    super("LABC_SERVICE_LOAD", `${file}: ${reason}`, { cause });
  }
  override get data() {
    return { file: this.file, reason: this.reason };
  }
}
tag(ServiceLoadError, "ServiceLoadError");
ServiceLoadError.prototype.name = "ServiceLoadError";

/** The function refuses this caller: what it asks needs a permission this network does not give. */
export class NotPermittedError extends LabcError {
  constructor(message: string) {
    super("LABC_NOT_PERMITTED", message);
  }
}
tag(NotPermittedError, "NotPermittedError");
NotPermittedError.prototype.name = "NotPermittedError";

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
tag(NotTrustedError, "NotTrustedError");
NotTrustedError.prototype.name = "NotTrustedError";

export class ClosedError extends LabcError {
  constructor(what: string) {
    super("LABC_CLOSED", `${what} is closed`);
  }
}
tag(ClosedError, "ClosedError");
ClosedError.prototype.name = "ClosedError";

/** How an error travels in an `exc` message. */
export interface ErrorPayload {
  name: string;
  code?: string;
  message: string;
  /** A LabcError's fields, or the own fields of any other error (`details`...). */
  data?: Record<string, unknown>;
  cause?: unknown;
  stack?: string;
}

export function errorToPayload(error: unknown, withStack: boolean): ErrorPayload {
  if (!(error instanceof Error)) {
    return { name: "Error", message: String(error) };
  }
  const payload: ErrorPayload = { name: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") payload.code = code;
  if (error instanceof LabcError) {
    if (error.data) payload.data = error.data;
  } else {
    // A LabcError's cause is labc's own business (a socket's error...); a user's travels.
    if (error.cause !== undefined) payload.cause = error.cause;
    const own = Object.keys(error).filter((key) => key !== "code" && key !== "stack");
    if (own.length) payload.data = Object.fromEntries(own.map((key) => [key, (error as unknown as Record<string, unknown>)[key]]));
  }
  if (withStack && error.stack) payload.stack = error.stack;
  return payload;
}

/**
 * Rebuilds a LabcError sent by a peer, or wraps anything else in a RemoteError. The map has no
 * prototype, so a peer naming "constructor" or "__proto__" gets a RemoteError, nothing more.
 */
const rebuilders: Record<string, (p: ErrorPayload) => LabcError> = Object.assign(
  Object.create(null),
  {
    NoSuchFunctionError: (p: ErrorPayload) =>
      new NoSuchFunctionError(String(p.data?.function ?? "?"), String(p.data?.scope ?? "?")),
    TimeoutError: (p: ErrorPayload) =>
      new TimeoutError(String(p.data?.function ?? "?"), Number(p.data?.timeoutMs ?? 0)),
    ConnectionLostError: (p: ErrorPayload) =>
      new ConnectionLostError(String(p.data?.target ?? "?"), p.data?.function as string | undefined),
    BadArgumentsError: (p: ErrorPayload) => new BadArgumentsError(p.message),
    NoSuchHostError: (p: ErrorPayload) => new NoSuchHostError(String(p.data?.host ?? "?"), []),
    NoSuchServiceError: (p: ErrorPayload) => new NoSuchServiceError(String(p.data?.service ?? "?"), p.message),
    ServiceLoadError: (p: ErrorPayload) => new ServiceLoadError(String(p.data?.file ?? "?"), String(p.data?.reason ?? p.message)),
    BadMessageError: (p: ErrorPayload) => new BadMessageError(String(p.data?.kind ?? "?"), p.message.replace(/^bad \S+ message: /, "")),
    LimitError: (p: ErrorPayload) => new LimitError(String(p.data?.limit ?? "?"), p.message.replace(/^limit \S+: /, "")),
    CancelledError: (p: ErrorPayload) => new CancelledError(String(p.data?.function ?? "?")),
    StreamRequiredError: (p: ErrorPayload) => new StreamRequiredError(String(p.data?.function ?? "?")),
    NotPermittedError: (p: ErrorPayload) => new NotPermittedError(p.message),
    NotTrustedError: (p: ErrorPayload) => new NotTrustedError(String(p.data?.address ?? "?"), p.message.replace(/^\S+: /, "")),
  },
);

export function errorFromPayload(payload: ErrorPayload, functionName: string, target: string): LabcError {
  const rebuild = rebuilders[payload.name];
  const error = rebuild
    ? rebuild(payload)
    : new RemoteError(`${functionName} on ${target}: ${payload.message}`, payload);
  if (payload.stack && !(error instanceof RemoteError)) {
    Object.defineProperty(error, "remoteStack", { value: payload.stack, enumerable: true });
  }
  if (error instanceof RemoteError) {
    // The thrown error's own fields, where they do not shadow RemoteError's (its code is remoteCode).
    for (const [key, value] of Object.entries(payload.data ?? {})) {
      if (!(key in error)) Object.defineProperty(error, key, { value, writable: true, enumerable: true, configurable: true });
    }
    if ("cause" in payload) Object.defineProperty(error, "cause", { value: payload.cause, writable: true, configurable: true });
  }
  return error;
}
