// An error's travel form in an exc message, and back (rebuilt by name, else a RemoteError).
import {
  BadArgumentsError,
  BadMessageError,
  CancelledError,
  ConnectionLostError,
  LabcError,
  LimitError,
  NoSuchFunctionError,
  NoSuchHostError,
  NoSuchServiceError,
  NotPermittedError,
  NotTrustedError,
  RemoteError,
  ServiceLoadError,
  StreamRequiredError,
  TimeoutError,
} from "../errors.js";
import type { Limits } from "./limits.js";
import { encodeMessage } from "./codec.js";
import { Kind, type ErrorPayload } from "./message.js";

export type { ErrorPayload };

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

/**
 * The `exc` frame answering request `id` with `error`. A field of it that cannot travel (a
 * function...) must not cost the caller its answer: the error then goes without its fields,
 * saying so.
 */
export function encodeError(id: number, error: unknown, withStack: boolean, limits: Limits): Buffer | Buffer[] {
  const body = errorToPayload(error, withStack);
  try {
    return encodeMessage(Kind.exc, id, body, limits);
  } catch (problem) {
    const { data, cause, ...rest } = body;
    return encodeMessage(Kind.exc, id, { ...rest, message: `${rest.message} (its fields were not sent: ${(problem as Error).message})` }, limits);
  }
}
