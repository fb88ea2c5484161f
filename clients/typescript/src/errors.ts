/**
 * Typed errors of the Sonicwire Node client.
 *
 * Every error the client raises on purpose is a {@link SonicwireError}; a non-OK gRPC status is
 * turned into the subclass for its code in exactly one place, {@link errorFromStatus}. When the
 * server attached a `google.rpc.Status` with a `google.rpc.ErrorInfo` detail (the
 * `grpc-status-details-bin` trailer), `reason` is its stable UPPER_SNAKE reason (e.g.
 * `VOICE_UNKNOWN`), `domain` its domain (`sonicwire.dev`) and `metadata` its map.
 */
import { Code, ConnectError } from "@connectrpc/connect";

import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

export { Code };

export interface ErrorFields {
  /** The gRPC status code; undefined for errors the client raises itself. */
  code?: Code;
  /** The `ErrorInfo` reason, or "" when the server sent none. */
  reason?: string;
  /** The `ErrorInfo` domain, or "". */
  domain?: string;
  /** The `ErrorInfo` metadata. */
  metadata?: Readonly<Record<string, string>>;
  cause?: unknown;
}

/** Base class of every error the client raises on purpose. */
export class SonicwireError extends Error {
  readonly code: Code | undefined;
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** The status message (without the code and reason prefix of `message`). */
  readonly rawMessage: string;

  constructor(message: string, fields: ErrorFields = {}) {
    const prefix = [fields.code === undefined ? "" : codeName(fields.code), fields.reason ?? ""]
      .filter((part) => part !== "")
      .join(" ");
    super(prefix && message ? `${prefix}: ${message}` : prefix || message, { cause: fields.cause });
    this.name = new.target.name;
    this.code = fields.code;
    this.reason = fields.reason ?? "";
    this.domain = fields.domain ?? "";
    this.metadata = Object.freeze({ ...(fields.metadata ?? {}) });
    this.rawMessage = message;
  }
}

/** INVALID_ARGUMENT: bad configuration, bad audio, unknown voice, ... */
export class InvalidArgumentError extends SonicwireError {}
/** UNAUTHENTICATED: missing or wrong API key. */
export class UnauthenticatedError extends SonicwireError {}
/** PERMISSION_DENIED. */
export class PermissionDeniedError extends SonicwireError {}
/** NOT_FOUND. */
export class NotFoundError extends SonicwireError {}
/** RESOURCE_EXHAUSTED: a server limit was hit (e.g. `SESSION_LIMIT_REACHED`). */
export class ResourceExhaustedError extends SonicwireError {}
/** FAILED_PRECONDITION. */
export class FailedPreconditionError extends SonicwireError {}
/** DEADLINE_EXCEEDED, also when no `SessionStarted` arrives in time. */
export class DeadlineExceededError extends SonicwireError {}
/** UNAVAILABLE: cannot connect, backend down (`BACKEND_UNAVAILABLE`), draining (`SERVER_DRAINING`). */
export class UnavailableError extends SonicwireError {}
/** CANCELLED by the server or a proxy. */
export class CallCancelledError extends SonicwireError {}
/** Any other non-OK status (INTERNAL, UNKNOWN, ...). */
export class ServerError extends SonicwireError {}
/** The server broke the stream protocol (e.g. its first message was not `SessionStarted`). */
export class ProtocolError extends SonicwireError {}
/** A send after `endInput()`, after `close()` or after the stream ended. */
export class ConversationClosedError extends SonicwireError {}
/** A WAV file the client cannot send. */
export class AudioFormatError extends SonicwireError {}

const CLASSES: Partial<Record<Code, typeof SonicwireError>> = {
  [Code.InvalidArgument]: InvalidArgumentError,
  [Code.Unauthenticated]: UnauthenticatedError,
  [Code.PermissionDenied]: PermissionDeniedError,
  [Code.NotFound]: NotFoundError,
  [Code.ResourceExhausted]: ResourceExhaustedError,
  [Code.FailedPrecondition]: FailedPreconditionError,
  [Code.DeadlineExceeded]: DeadlineExceededError,
  [Code.Unavailable]: UnavailableError,
  [Code.Canceled]: CallCancelledError,
};

/** The gRPC name of a status code, e.g. `INVALID_ARGUMENT`. */
export function codeName(code: Code): string {
  return (Code[code] ?? String(code)).replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()
    .replace("CANCELED", "CANCELLED");
}

/** Node error codes of a connection that could not be made or was lost (no gRPC status). */
const TRANSPORT_FAILURE = /^(ECONNRESET|EPIPE|EHOSTUNREACH|ENETUNREACH|ECONNABORTED|ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|ERR_HTTP2_(SESSION_ERROR|GOAWAY_SESSION|STREAM_CANCEL))/;

function nodeErrorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let at = error, depth = 0; at instanceof Error && depth < 10; depth++) {
    const code = (at as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    at = at.cause;
  }
  return codes;
}

/**
 * Turn anything a call threw into a {@link SonicwireError}: a `ConnectError` becomes the
 * subclass for its code, with the `ErrorInfo` reason; a `SonicwireError` is returned as is.
 *
 * connect-node reports a failed TLS handshake or a reset connection as INTERNAL or ABORTED;
 * like the other gRPC implementations (and the Python and Go clients) we call it UNAVAILABLE,
 * which is also what connection retries look for.
 */
export function errorFromStatus(error: unknown): SonicwireError {
  if (error instanceof SonicwireError) {
    return error;
  }
  const connect = ConnectError.from(error);
  const info = connect.findDetails(ErrorInfoSchema)[0];
  const lostConnection =
    (connect.code === Code.Internal || connect.code === Code.Aborted) &&
    nodeErrorCodes(connect).some((code) => TRANSPORT_FAILURE.test(code));
  const code = lostConnection ? Code.Unavailable : connect.code;
  const Class = CLASSES[code] ?? ServerError;
  return new Class(connect.rawMessage, {
    code,
    reason: info?.reason ?? "",
    domain: info?.domain ?? "",
    metadata: info?.metadata ?? {},
    cause: error,
  });
}
