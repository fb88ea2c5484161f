/**
 * One live conversation: a `Converse` stream wrapped in typed sends and events.
 *
 * Created (and started) by `client.converse(config)`: the stream is open, the `SessionConfig`
 * sent and the server's `SessionStarted` received. UNAVAILABLE up to that point is retried with
 * backoff (nothing but the configuration has been sent); once the session has started nothing
 * is retried, and a failure ends the iteration with a typed `SonicwireError`.
 *
 * Sends (`sendAudio`, `sendText`, `reportPlayback`, `sendToolResult`) queue the message and
 * return at once; they throw once the conversation has ended. Iterate the events from one
 * place; iterating also answers `ToolCall`s for the client tools given to `converse()`.
 */
import { type MessageInitShape, create } from "@bufbuild/protobuf";

import {
  ConversationClosedError,
  DeadlineExceededError,
  ProtocolError,
  SonicwireError,
  errorFromStatus,
  Code,
} from "./errors.js";
import { type ConverseEvent, type EventOf, eventFromResponse } from "./events.js";
import {
  type ConverseRequest,
  ConverseRequestSchema,
  type ConverseResponse,
  type SessionConfig,
  ToolExecutor,
} from "./gen/sonicwire/v1/voice_service_pb.js";
import { DEFAULT_RETRY, type RetryPolicy, withRetries } from "./retry.js";
import { type ClientTool, runTool } from "./tools.js";

/** Opens one `Converse` call reading `requests`; aborting `signal` cancels it. */
export type OpenCall = (
  requests: AsyncIterable<ConverseRequest>,
  signal: AbortSignal,
) => AsyncIterable<ConverseResponse>;

/** The client's half of the stream: an async iterable that sends wait on. */
class RequestQueue implements AsyncIterable<ConverseRequest> {
  private readonly items: ConverseRequest[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  push(request: ConverseRequest): void {
    this.items.push(request);
    this.notify();
  }

  /** Half-close once the queued messages are written. */
  end(): void {
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ConverseRequest> {
    for (;;) {
      const next = this.items.shift();
      if (next !== undefined) {
        yield next;
      } else if (this.ended) {
        return;
      } else {
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    }
  }
}

export interface ConversationOptions {
  /** Client tools answered automatically, by name. */
  tools?: ReadonlyMap<string, ClientTool>;
  /** Connection retries for UNAVAILABLE before `SessionStarted`. */
  retry?: RetryPolicy;
  /** Longest wait for `SessionStarted`, over all attempts; default 10 s. */
  startTimeoutMs?: number;
}

export class Conversation implements AsyncIterable<ConverseEvent> {
  private readonly tools: ReadonlyMap<string, ClientTool>;
  private readonly retry: RetryPolicy;
  private readonly startTimeoutMs: number;
  private requests = new RequestQueue();
  private abort = new AbortController();
  private responses: AsyncIterator<ConverseResponse> | undefined;
  private started: EventOf<"sessionStarted"> | undefined;
  private firstDelivered = false;
  private readonly toolTasks = new Set<Promise<void>>();
  private inputEnded = false;
  /** Set once endInput() let the tool handlers answer: the stream takes no more tool results. */
  private resultsEnded = false;
  private finished = false;
  private closed = false;
  private error: SonicwireError | undefined;
  /** How many times the stream was opened (1 unless a connection was retried). */
  attempts = 0;

  constructor(
    private readonly openCall: OpenCall,
    private readonly config: SessionConfig,
    options: ConversationOptions = {},
  ) {
    this.tools = options.tools ?? new Map();
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.startTimeoutMs = options.startTimeoutMs ?? 10_000;
  }

  /**
   * Open the stream, send the configuration and wait for `SessionStarted` (also the first event
   * of the iteration). Called by `client.converse()`.
   *
   * @throws UnavailableError the server stayed unreachable for every attempt.
   * @throws DeadlineExceededError no `SessionStarted` within the start timeout.
   * @throws ProtocolError the server's first message was not `SessionStarted`.
   * @throws SonicwireError any other status, e.g. InvalidArgumentError with reason `VOICE_UNKNOWN`.
   */
  async start(): Promise<EventOf<"sessionStarted">> {
    if (this.started === undefined) {
      const deadline = performance.now() + this.startTimeoutMs;
      this.started = await withRetries(this.retry, deadline, async (attempt) => {
        this.attempts = attempt;
        return this.openOnce(deadline);
      });
    }
    return this.started;
  }

  private async openOnce(deadline: number): Promise<EventOf<"sessionStarted">> {
    this.requests = new RequestQueue();
    this.abort = new AbortController();
    this.requests.push(create(ConverseRequestSchema, { request: { case: "config", value: this.config } }));
    const responses = this.openCall(this.requests, this.abort.signal)[Symbol.asyncIterator]();
    this.responses = responses;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), Math.max(deadline - performance.now(), 0));
    });
    const first = responses.next();
    first.catch(() => undefined); // raced below; a late rejection after a timeout is expected
    let outcome: IteratorResult<ConverseResponse> | "timeout";
    try {
      outcome = await Promise.race([first, timeout]);
    } catch (error) {
      throw errorFromStatus(error);
    } finally {
      clearTimeout(timer);
    }
    if (outcome === "timeout") {
      this.abort.abort();
      throw new DeadlineExceededError(`no SessionStarted within ${this.startTimeoutMs} ms`, {
        code: Code.DeadlineExceeded,
      });
    }
    if (outcome.done) {
      throw new ProtocolError("the server ended the stream before SessionStarted");
    }
    const event = eventFromResponse(outcome.value);
    if (event?.case !== "sessionStarted") {
      this.abort.abort();
      throw new ProtocolError(`expected SessionStarted as the first message, got ${event?.case}`);
    }
    return event;
  }

  /** The `SessionStarted` event's message. */
  get session(): EventOf<"sessionStarted">["value"] {
    if (this.started === undefined) {
      throw new Error("the conversation has not started; use client.converse()");
    }
    return this.started.value;
  }

  /** The server-assigned session id. */
  get sessionId(): string {
    return this.session.sessionId;
  }

  /** True once the stream has ended (all events read) or the conversation was closed. */
  get done(): boolean {
    return this.finished || this.closed;
  }

  // -- sending ------------------------------------------------------------------------------

  /** Send microphone audio: PCM s16le in the session's input format, at most 65536 bytes. */
  sendAudio(audio: Uint8Array): void {
    this.write({ case: "audio", value: { audio } });
  }

  /** Send a typed user turn (at most 4096 UTF-8 bytes). */
  sendText(text: string): void {
    this.write({ case: "text", value: { text } });
  }

  /** Tell the server how much of a turn's audio has actually been played. */
  reportPlayback(turnId: string, playedMs: number): void {
    this.write({ case: "playback", value: { turnId, playedMs: BigInt(Math.floor(playedMs)) } });
  }

  /**
   * Answer a `ToolCall` whose executor is CLIENT (only for tools without a handler).
   *
   * @throws ConversationClosedError after endInput() (answer before ending the input).
   */
  sendToolResult(toolCallId: string, content: string, isError = false): void {
    this.write({ case: "toolResult", value: { toolCallId, content, isError } }, true);
  }

  /**
   * Half-close: no more input; the server ends the stream after its current turn. Waits for the
   * running tool handlers first (a half-closed stream cannot carry their results). Idempotent.
   */
  async endInput(): Promise<void> {
    if (this.inputEnded) {
      return;
    }
    this.inputEnded = true;
    await Promise.allSettled([...this.toolTasks]);
    this.resultsEnded = true;
    this.requests.end();
  }

  /** Hang up: cancel the stream if it is still open. Safe to call more than once. */
  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.requests.end();
    if (!this.finished) {
      this.abort.abort();
    }
  }

  private write(request: MessageInitShape<typeof ConverseRequestSchema>["request"], afterEnd = false): void {
    if (this.started === undefined) {
      throw new Error("the conversation has not started; use client.converse()");
    }
    if (this.error !== undefined) {
      throw this.error;
    }
    if (this.closed || this.finished) {
      throw new ConversationClosedError("the conversation has ended");
    }
    if (this.inputEnded && !afterEnd) {
      throw new ConversationClosedError("input already ended (endInput() was called)");
    }
    if (this.resultsEnded) {
      // Pushed after the half-close, it would be dropped without a word (red-team s36).
      throw new ConversationClosedError(
        "input already ended (endInput() was called): the stream takes no more tool results; send them before endInput()",
      );
    }
    this.requests.push(create(ConverseRequestSchema, { request }));
  }

  // -- receiving ----------------------------------------------------------------------------

  /**
   * The next event, or undefined once the server has ended the stream normally (or the
   * conversation was closed).
   *
   * @throws SonicwireError the server ended the stream with an error status.
   */
  async receive(): Promise<ConverseEvent | undefined> {
    if (this.started === undefined || this.responses === undefined) {
      throw new Error("the conversation has not started; use client.converse()");
    }
    if (!this.firstDelivered) {
      this.firstDelivered = true;
      return this.started;
    }
    for (;;) {
      if (this.done) {
        return undefined;
      }
      let result: IteratorResult<ConverseResponse>;
      try {
        result = await this.responses.next();
      } catch (error) {
        this.finished = true;
        if (this.closed) {
          return undefined; // close() cancelled the call under our read
        }
        this.error = errorFromStatus(error);
        throw this.error;
      }
      if (result.done) {
        this.finished = true;
        return undefined;
      }
      const event = eventFromResponse(result.value);
      if (event === undefined) {
        continue; // a message kind from a newer server
      }
      if (event.case === "toolCall") {
        this.dispatchTool(event);
      }
      return event;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ConverseEvent> {
    for (let event = await this.receive(); event !== undefined; event = await this.receive()) {
      yield event;
    }
  }

  private dispatchTool(event: EventOf<"toolCall">): void {
    const call = event.value;
    const tool = call.executor === ToolExecutor.CLIENT ? this.tools.get(call.name) : undefined;
    if (tool === undefined) {
      return; // a server tool, or declared by hand: the application answers it
    }
    const task = runTool(tool, call.argumentsJson).then(([content, isError]) => {
      if (!this.done) {
        this.sendToolResult(call.id, content, isError);
      }
    });
    const tracked = task.catch(() => undefined).finally(() => this.toolTasks.delete(tracked));
    this.toolTasks.add(tracked);
  }
}
