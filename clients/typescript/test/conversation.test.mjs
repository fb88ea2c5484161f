// Unit tests of the thin layer against a scripted Converse call (no network): the stream rules
// (config first, SessionStarted first, retries only before it, half-close after tool results),
// the messages each send produces, and error decoding. Run by tests/sdks/test_units.py
// (`node --test clients/typescript/test/`); the live-server tests are in tests/sdks.
import assert from "node:assert/strict";
import { test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Conversation,
  ConversationClosedError,
  DeadlineExceededError,
  InvalidArgumentError,
  ProtocolError,
  ServerError,
  UnavailableError,
  declareTools,
  errorFromStatus,
  pb,
  rpc,
  sessionConfig,
} from "@sonicwire/client";

const { ErrorInfoSchema } = rpc;


const started = (id = "s1") =>
  create(pb.ConverseResponseSchema, {
    response: { case: "sessionStarted", value: { sessionId: id, backend: "echo" } },
  });
const response = (value) => create(pb.ConverseResponseSchema, { response: value });

/**
 * A scripted call: `attempts[i]` runs attempt i with the requests the client writes. It yields
 * responses; it may read requests with `next()` and finish when the client half-closes.
 */
function scripted(...attempts) {
  const calls = [];
  const open = (requests, signal) => {
    const script = attempts[calls.length];
    const iterator = requests[Symbol.asyncIterator]();
    const call = { requests: [], halfClosed: false, signal };
    calls.push(call);
    const next = async () => {
      const item = await iterator.next();
      if (item.done) call.halfClosed = true;
      else call.requests.push(item.value);
      return item.done ? undefined : item.value;
    };
    return script(next, signal);
  };
  return { open, calls };
}

test("config goes first, SessionStarted is the first event, sends become requests", async () => {
  const { open, calls } = scripted(async function* (next) {
    await next(); // the config
    yield started();
    for (let request = await next(); request; request = await next()) {
      if (request.request.case === "text") {
        yield response({ case: "transcript", value: { text: `heard ${request.request.value.text}`, final: true } });
      }
    }
  });
  const conversation = new Conversation(open, sessionConfig({ sampleRateHz: 24000 }));
  const session = await conversation.start();
  assert.equal(session.value.sessionId, "s1");
  assert.equal(conversation.sessionId, "s1");
  conversation.sendAudio(new Uint8Array([1, 2, 3, 4]));
  conversation.reportPlayback("t1", 1234.7);
  conversation.sendText("hi");
  const events = [];
  for await (const event of conversation) {
    events.push(event);
    if (event.case === "transcript") await conversation.endInput();
  }
  assert.deepEqual(events.map((e) => e.case), ["sessionStarted", "transcript"]);
  assert.equal(events[1].value.text, "heard hi");
  const [call] = calls;
  assert.deepEqual(call.requests.map((r) => r.request.case), ["config", "audio", "playback", "text"]);
  assert.equal(call.requests[0].request.value.inputFormat.sampleRateHz, 24000);
  assert.deepEqual([...call.requests[1].request.value.audio], [1, 2, 3, 4]);
  assert.equal(call.requests[2].request.value.turnId, "t1");
  assert.equal(call.requests[2].request.value.playedMs, 1234n);
  assert.ok(call.halfClosed);
  assert.throws(() => conversation.sendText("late"), ConversationClosedError);
});

test("UNAVAILABLE before SessionStarted is retried; nothing is retried afterwards", async () => {
  const { open, calls } = scripted(
    async function* () {
      throw new ConnectError("connect ECONNREFUSED", Code.Unavailable);
    },
    async function* (next) {
      await next();
      yield started("s2");
      throw new ConnectError("backend gone", Code.Unavailable);
    },
  );
  const retry = { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 1, jitter: 0 };
  const conversation = new Conversation(open, sessionConfig(), { retry });
  assert.equal((await conversation.start()).value.sessionId, "s2");
  assert.equal(conversation.attempts, 2);
  assert.equal((await conversation.receive())?.case, "sessionStarted");
  await assert.rejects(conversation.receive(), UnavailableError);
  assert.equal(calls.length, 2); // the started conversation was not reopened
  assert.throws(() => conversation.sendText("x"), UnavailableError);
});

test("retries stop after maxAttempts; other codes are not retried", async () => {
  const fail = (code) => async function* () { throw new ConnectError("no", code); };
  const retry = { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1, jitter: 0 };
  const unavailable = scripted(fail(Code.Unavailable), fail(Code.Unavailable), fail(Code.Unavailable));
  await assert.rejects(new Conversation(unavailable.open, sessionConfig(), { retry }).start(), UnavailableError);
  assert.equal(unavailable.calls.length, 2);
  const invalid = scripted(fail(Code.InvalidArgument), fail(Code.InvalidArgument));
  await assert.rejects(new Conversation(invalid.open, sessionConfig(), { retry }).start(), InvalidArgumentError);
  assert.equal(invalid.calls.length, 1);
});

test("a first message other than SessionStarted is a protocol error", async () => {
  const { open } = scripted(async function* () {
    yield response({ case: "usage", value: {} });
  });
  await assert.rejects(new Conversation(open, sessionConfig()).start(), ProtocolError);
});

test("no SessionStarted within the start timeout: DeadlineExceededError, call cancelled", async () => {
  const { open, calls } = scripted(async function* (_next, signal) {
    await new Promise((resolve) => signal.addEventListener("abort", resolve));
    throw new ConnectError("aborted", Code.Canceled);
  });
  const conversation = new Conversation(open, sessionConfig(), { startTimeoutMs: 50 });
  await assert.rejects(conversation.start(), DeadlineExceededError);
  assert.ok(calls[0].signal.aborted);
});

test("client tools are declared and answered before the half-close", async () => {
  const { config, tools } = declareTools(sessionConfig(), {
    lookup: {
      handler: async ({ id }) => ({ id, ok: true }),
      description: "Look up.",
      examples: ["look up {id}"],
      answerTemplate: "Found {id}.",
    },
    fails: () => {
      throw new TypeError("broken");
    },
  });
  assert.deepEqual(config.clientTools.map((t) => t.name), ["lookup", "fails"]);
  assert.equal(config.clientTools[0].parametersJsonSchema, '{"type":"object"}');
  assert.deepEqual([config.clientTools[0].examples, config.clientTools[0].answerTemplate], [["look up {id}"], "Found {id}."]);
  assert.throws(() => declareTools(sessionConfig(), { "1bad": () => 1 }), RangeError);
  const client = pb.ToolExecutor.CLIENT;
  const { open, calls } = scripted(async function* (next) {
    await next();
    yield started();
    yield response({ case: "toolCall", value: { id: "c1", name: "lookup", argumentsJson: '{"id": 7}', executor: client } });
    yield response({ case: "toolCall", value: { id: "c2", name: "fails", argumentsJson: "{}", executor: client } });
    yield response({ case: "toolCall", value: { id: "c3", name: "lookup", executor: pb.ToolExecutor.SERVER } });
    while (await next());
  });
  const conversation = new Conversation(open, config, { tools });
  await conversation.start();
  const seen = [];
  for await (const event of conversation) {
    seen.push(event.case);
    if (seen.length === 4) await conversation.endInput(); // waits for both handlers
  }
  const results = calls[0].requests.filter((r) => r.request.case === "toolResult").map((r) => r.request.value);
  assert.deepEqual(
    results.map((r) => [r.toolCallId, JSON.parse(r.content), r.isError]).sort(),
    [["c1", { id: 7, ok: true }, false], ["c2", { error: "TypeError: broken" }, true]],
  );
  assert.ok(calls[0].halfClosed);
});

test("errors carry the ErrorInfo reason from the status details", () => {
  const info = create(ErrorInfoSchema, { reason: "VOICE_UNKNOWN", domain: "sonicwire.dev", metadata: { voice: "x" } });
  const error = errorFromStatus(
    new ConnectError("no voice 'x'", Code.InvalidArgument, undefined, [{ desc: ErrorInfoSchema, value: info }]),
  );
  assert.ok(error instanceof InvalidArgumentError);
  assert.deepEqual([error.reason, error.domain, error.metadata.voice], ["VOICE_UNKNOWN", "sonicwire.dev", "x"]);
  assert.equal(error.message, "INVALID_ARGUMENT VOICE_UNKNOWN: no voice 'x'");
  assert.ok(errorFromStatus(new ConnectError("boom", Code.Internal)) instanceof ServerError);
  // A failed TLS handshake is UNAVAILABLE, as in the other gRPC clients.
  const tls = Object.assign(new Error("self-signed certificate"), { code: "SELF_SIGNED_CERT_IN_CHAIN" });
  assert.ok(errorFromStatus(new ConnectError("tls", Code.Internal, undefined, undefined, tls)) instanceof UnavailableError);
});

test("a tool result after endInput() is refused, not dropped without a word", async () => {
  // Red-team session s36: it was pushed onto the ended request queue and never sent.
  const { open, calls } = scripted(async function* (next) {
    await next();
    yield started();
    yield response({ case: "toolCall", value: { id: "c1", name: "lookup", executor: pb.ToolExecutor.CLIENT } });
    while (await next());
  });
  const conversation = new Conversation(open, sessionConfig());
  await conversation.start();
  for await (const event of conversation) {
    if (event.case === "toolCall") break;
  }
  await conversation.endInput();
  assert.throws(() => conversation.sendToolResult("c1", "{}"), ConversationClosedError);
  conversation.close();
  assert.equal(calls[0].requests.filter((r) => r.request.case === "toolResult").length, 0);
});
