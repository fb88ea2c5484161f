/**
 * Say something to the assistant and collect everything it answers: one whole exchange, as
 * `sonicwire talk` does in the Python SDK.
 *
 * The typed turn goes first; the audio is streamed at real time once the assistant has answered
 * it, followed by trailing silence so the server's voice activity detector sees the end of
 * speech. After each input the answer (a `TurnComplete` other than for tool use) is awaited, at
 * most `replyTimeoutMs`; then the stream is half-closed and read to its end.
 */
import { clone, create } from "@bufbuild/protobuf";

import { type PcmAudio, silence, streamAudio } from "./audio.js";
import { type Client, type ConverseOptions, sessionConfig } from "./client.js";
import { SonicwireError } from "./errors.js";
import type { ConverseEvent, EventOf } from "./events.js";
import {
  AudioEncoding,
  AudioFormatSchema,
  Role,
  type SessionConfig,
  SessionConfigSchema,
  SpeechActivityKind,
  StopReason,
} from "./gen/sonicwire/v1/voice_service_pb.js";

export interface TalkOptions {
  /** Microphone audio; the session's input rate is set to its rate. */
  audio?: PcmAudio;
  /** A typed user turn, sent before the audio. */
  text?: string;
  /** The session configuration; default `sessionConfig()`. */
  config?: SessionConfig;
  /** Client tools, as for `client.converse`. */
  tools?: ConverseOptions["tools"];
  /** 1 streams at real time, 0 as fast as possible. */
  speed?: number;
  chunkMs?: number;
  /** Silence sent after the audio; default 1000 ms. */
  trailingSilenceMs?: number;
  /** Longest wait for an answer before half-closing; default 30 s. */
  replyTimeoutMs?: number;
  /** After audio with signal, longest wait for the server to report the user's speech. */
  hearTimeoutMs?: number;
  /** Called with every event as it arrives. */
  onEvent?: (event: ConverseEvent) => void;
  /** Called with (sentMs, totalMs) while audio is sent. */
  onProgress?: (sentMs: number, totalMs: number) => void;
}

/** What came back from {@link talk}. */
export interface TalkResult {
  readonly session: EventOf<"sessionStarted">["value"];
  /** Every event in arrival order, `sessionStarted` first. */
  readonly events: readonly ConverseEvent[];
  /** The assistant's audio, in the session's output format. */
  readonly reply: PcmAudio;
  /** Milliseconds of audio sent (trailing silence included). */
  readonly sentMs: number;
  /** The final transcripts of one side (default the assistant's), joined by spaces. */
  text(role?: Role): string;
}

const SIGNAL_PEAK = 500; // about -36 dBFS: anything quieter is not worth waiting for an answer to

function hasSignal(pcm: Uint8Array): boolean {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength - (pcm.byteLength % 2));
  for (let at = 0; at < view.byteLength; at += 2) {
    if (Math.abs(view.getInt16(at, true)) > SIGNAL_PEAK) return true;
  }
  return false;
}

/** Resolves when `signal()` is called or after `timeoutMs`, whichever comes first. */
class Flag {
  private resolve: (() => void) | undefined;
  private promise: Promise<void> = Promise.resolve();
  set = true;

  clear(): void {
    if (this.set) {
      this.set = false;
      this.promise = new Promise((resolve) => (this.resolve = resolve));
    }
  }

  raise(): void {
    this.set = true;
    this.resolve?.();
  }

  async wait(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.promise, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
}

function configFor(config: SessionConfig | undefined, audio: PcmAudio | undefined): SessionConfig {
  if (config === undefined) {
    return sessionConfig({ sampleRateHz: audio?.sampleRateHz ?? 16000 });
  }
  const result = clone(SessionConfigSchema, config);
  if (audio !== undefined) {
    // The audio's own rate wins: sending it at another declared rate would garble it.
    result.inputFormat = create(AudioFormatSchema, {
      encoding: AudioEncoding.PCM_S16LE,
      sampleRateHz: audio.sampleRateHz,
      channels: 1,
    });
  }
  return result;
}

/**
 * Run one exchange: send `text` and/or `audio`, collect the answers, hang up.
 *
 * @throws SonicwireError the typed error the server ended the stream with.
 */
export async function talk(client: Client, options: TalkOptions): Promise<TalkResult> {
  const { audio, text, speed = 1, chunkMs = 20, trailingSilenceMs = 1000 } = options;
  const { replyTimeoutMs = 30_000, hearTimeoutMs = 2000, onEvent, onProgress } = options;
  if (audio === undefined && text === undefined) {
    throw new RangeError("talk() needs audio, text or both");
  }
  const conversation = await client.converse(configFor(options.config, audio), {
    tools: options.tools,
  });
  const events: ConverseEvent[] = [];
  const replyChunks: Uint8Array[] = [];
  const answered = new Flag();
  const heard = new Flag();
  heard.clear();
  let sentMs = 0;

  const send = async (): Promise<void> => {
    if (text !== undefined) {
      answered.clear();
      conversation.sendText(text);
      await answered.wait(replyTimeoutMs);
    }
    if (audio !== undefined) {
      const rate = audio.sampleRateHz;
      const tail = silence(trailingSilenceMs, rate);
      const pcm = new Uint8Array(audio.pcm.length + tail.length);
      pcm.set(audio.pcm);
      sentMs = await streamAudio(conversation, { pcm, sampleRateHz: rate }, {
        chunkMs,
        speed,
        onProgress,
      });
      if (hasSignal(audio.pcm) && !heard.set) {
        // The server may lag behind audio sent faster than real time: give it a moment to
        // report the user's speech before deciding nobody spoke.
        await heard.wait(hearTimeoutMs);
      }
      await answered.wait(replyTimeoutMs);
    }
    await conversation.endInput();
  };
  // A send failing because the stream ended is reported by the reading side, with its status.
  const sender = send().catch((error: unknown) => {
    if (!(error instanceof SonicwireError)) {
      conversation.close();
      throw error;
    }
  });
  sender.catch(() => undefined); // awaited below; until then a failure must not count as unhandled
  let failure: { error: unknown } | undefined;
  try {
    for await (const event of conversation) {
      events.push(event);
      switch (event.case) {
        case "audio":
          replyChunks.push(event.value.audio);
          break;
        case "speechActivity":
          if (event.value.kind === SpeechActivityKind.STARTED) {
            answered.clear();
            heard.raise();
          }
          break;
        case "transcript":
          if (event.value.role === Role.USER) {
            answered.clear();
            heard.raise();
          }
          break;
        case "turnComplete":
          if (event.value.stopReason !== StopReason.TOOL_USE) {
            answered.raise();
          }
          break;
      }
      onEvent?.(event);
    }
  } catch (error) {
    failure = { error };
  } finally {
    conversation.close();
    answered.raise(); // unblock the sender
    heard.raise();
  }
  if (failure !== undefined) {
    await sender.catch(() => undefined); // the stream's own error is the one to report
    throw failure.error;
  }
  await sender;
  const length = replyChunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const pcm = new Uint8Array(length);
  let at = 0;
  for (const chunk of replyChunks) {
    pcm.set(chunk, at);
    at += chunk.length;
  }
  const session = conversation.session;
  const outputRate = session.config?.outputFormat?.sampleRateHz || 16000; // the server fills it in; 16000 when unset
  return {
    session,
    events,
    reply: { pcm, sampleRateHz: outputRate },
    sentMs,
    text(role: Role = Role.ASSISTANT): string {
      return events
        .flatMap((e) => (e.case === "transcript" && e.value.final && e.value.role === role ? [e.value.text] : []))
        .join(" ");
    },
  };
}
