#!/usr/bin/env node
// Talk to a Sonicwire server from Node: stream a WAV file at real time (and/or send a typed
// turn), print what happens, save the assistant's reply.
//
//   node clients/typescript/examples/talk.mjs question.wav --target HOST:PORT --api-key KEY --out reply.wav
//   node clients/typescript/examples/talk.mjs --text "What time is it?" --json
//
// Exit codes match the Python `sonicwire talk`: 0 ok, 1 other error status, 2 usage or WAV
// error, 3 unavailable, 4 unauthenticated/permission denied, 5 resource exhausted, 6 deadline.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { create, toJson } from "@bufbuild/protobuf";
import {
  AudioFormatError,
  Client,
  DeadlineExceededError,
  NO_RETRY,
  PermissionDeniedError,
  ResourceExhaustedError,
  Role,
  SonicwireError,
  UnauthenticatedError,
  UnavailableError,
  codeName,
  durationMs,
  pb,
  readWav,
  sessionConfig,
  talk,
  writeWav,
} from "@sonicwire/client";

const USAGE = `usage: talk.mjs [FILE.wav] [--text TEXT] [--target HOST:PORT] [--api-key KEY]
  [--out reply.wav | --no-save] [--voice ID] [--speed 1.0] [--trailing-silence MS]
  [--reply-timeout S] [--timeout S] [--connect-retries N] [--tls | --insecure] [--ca PEM]
  [--cert PEM] [--key PEM] [--server-name NAME] [--demo-tool] [--json]`;

function usage(message) {
  process.stderr.write(`talk.mjs: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      target: { type: "string", default: process.env.SONICWIRE_TARGET ?? "127.0.0.1:50051" },
      "api-key": { type: "string", default: process.env.SONICWIRE_API_KEY },
      out: { type: "string", default: "reply.wav" },
      "no-save": { type: "boolean", default: false },
      text: { type: "string" },
      voice: { type: "string", default: "" },
      speed: { type: "string", default: "1" },
      "trailing-silence": { type: "string", default: "1000" },
      "reply-timeout": { type: "string", default: "30" },
      timeout: { type: "string", default: "10" },
      "connect-retries": { type: "string", default: "3" },
      tls: { type: "boolean", default: false },
      insecure: { type: "boolean", default: false },
      ca: { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      "server-name": { type: "string" },
      "demo-tool": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
} catch (error) {
  usage(error.message);
}
const opts = args.values;
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (args.positionals.length > 1) usage("at most one WAV file");
const file = args.positionals[0];
if (file === undefined && opts.text === undefined) usage("give a WAV file, --text, or both");
const number = (name) => {
  const value = Number(opts[name]);
  if (!Number.isFinite(value) || value < 0) usage(`--${name} must be a non-negative number`);
  return value;
};

const started = performance.now();
const stamp = () => ((performance.now() - started) / 1000).toFixed(3);
const say = (line) => {
  if (!opts.json) process.stdout.write(`[${stamp().padStart(7)}s] ${line}\n`);
};
const emit = (record) => {
  if (opts.json) process.stdout.write(`${JSON.stringify({ t: Number(stamp()), ...record })}\n`);
};

// A client tool the model can call (`--demo-tool`): it runs here, in this process. `examples`
// and `answerTemplate` teach it to the offline local engine; Nova Sonic reads the description.
const tools = opts["demo-tool"]
  ? {
      get_weather: {
        description: "The weather forecast for a city.",
        parameters: {
          type: "object",
          properties: { city: { type: "string", enum: ["Lisbon", "Paris", "Tokyo"] } },
          required: ["city"],
        },
        examples: ["what's the weather in {city}", "weather in {city}", "is it raining in {city}"],
        answerTemplate: "In {city} it is {forecast}.",
        handler: async (args) => ({ city: args.city, forecast: "sunny", answered_by: "node" }),
      },
    }
  : undefined;

function describe(event) {
  const v = event.value;
  switch (event.case) {
    case "sessionStarted":
      return `session ${v.sessionId} backend=${v.backend} tools=${v.tools.join(",")}`;
    case "transcript":
      return v.final ? `${v.role === Role.USER ? "you" : "assistant"}: ${v.text}` : undefined;
    case "speechActivity":
      return `speech ${v.kind === pb.SpeechActivityKind.STARTED ? "started" : "stopped"} at ${Number(v.offsetMs) / 1000} s`;
    case "toolCall":
      return `tool call ${v.name} ${v.argumentsJson} (${v.executor === pb.ToolExecutor.CLIENT ? "client" : "server"})`;
    case "toolCallResult":
      return `tool result ${v.name}: ${pb.ToolStatus[v.status]} in ${v.durationMs} ms ${v.resultJson}`;
    case "turnComplete":
      return `turn ${v.turnId} complete: ${pb.StopReason[v.stopReason]}, ${Number(v.audioMs) / 1000} s of audio`;
    case "interruption":
      return `interrupted turn ${v.turnId} after ${v.playedMs} ms`;
    case "warning":
      return `warning ${v.reason}: ${v.message}`;
    case "goingAway":
      return `server going away: ${v.reason}`;
    default:
      return undefined;
  }
}

function onEvent(event) {
  const line = describe(event);
  if (line) say(line);
  if (opts.json) {
    const json = toJson(pb.ConverseResponseSchema, create(pb.ConverseResponseSchema, { response: event }));
    const body = json[Object.keys(json)[0]] ?? {};
    if (event.case === "audio") body.audio = event.value.audio.length; // bytes, not base64
    emit({ type: event.case, ...body });
  }
}

function exitCode(error) {
  if (error instanceof AudioFormatError) return 2;
  if (error instanceof UnavailableError) return 3;
  if (error instanceof UnauthenticatedError || error instanceof PermissionDeniedError) return 4;
  if (error instanceof ResourceExhaustedError) return 5;
  if (error instanceof DeadlineExceededError) return 6;
  return 1;
}

const tls =
  opts.insecure ? false
  : opts.ca || opts.cert || opts.key || opts["server-name"] ? {
      ca: opts.ca && readFileSync(opts.ca),
      cert: opts.cert && readFileSync(opts.cert),
      key: opts.key && readFileSync(opts.key),
      serverName: opts["server-name"],
    }
  : opts.tls ? true
  : undefined;
const retries = number("connect-retries");
const client = new Client(opts.target, {
  apiKey: opts["api-key"],
  tls,
  timeoutMs: number("timeout") * 1000,
  retry: retries === 0 ? NO_RETRY : { ...NO_RETRY, maxAttempts: retries + 1 },
});
let code = 0;
try {
  const audio = file === undefined ? undefined : await readWav(file);
  const result = await talk(client, {
    audio,
    text: opts.text,
    config: sessionConfig({ sampleRateHz: audio?.sampleRateHz ?? 16000, voice: opts.voice }),
    tools,
    speed: number("speed"),
    trailingSilenceMs: number("trailing-silence"),
    replyTimeoutMs: number("reply-timeout") * 1000,
    onEvent,
  });
  const replyMs = durationMs(result.reply);
  const saved = !opts["no-save"] && result.reply.pcm.length > 0;
  if (saved) await writeWav(opts.out, result.reply);
  say(`done: reply ${(replyMs / 1000).toFixed(2)} s of audio${saved ? ` written to ${opts.out}` : ""}`);
  emit({
    type: "done",
    session_id: result.session.sessionId,
    sent_ms: result.sentMs,
    reply_ms: replyMs,
    reply_sample_rate_hz: result.reply.sampleRateHz,
    user_text: result.text(Role.USER),
    assistant_text: result.text(Role.ASSISTANT),
    out: saved ? opts.out : null,
  });
} catch (error) {
  if (!(error instanceof SonicwireError)) throw error;
  code = exitCode(error);
  process.stderr.write(`talk.mjs: ${error.message}\n`);
  emit({
    type: "error",
    code: error.code === undefined ? null : codeName(error.code),
    reason: error.reason,
    message: error.rawMessage,
    exit_code: code,
  });
} finally {
  client.close();
}
process.exitCode = code;
