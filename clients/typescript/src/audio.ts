/**
 * Audio helpers: read and write WAV files, split PCM into chunks, stream it at real time.
 *
 * Sonicwire speaks 16-bit signed little-endian PCM, mono, at 8, 16, 24 or 48 kHz. `readWav`
 * mixes several channels down to mono but rejects other sample widths and rates with a hint
 * on how to convert the file; the server resamples between the supported rates itself.
 */
import { readFile, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

import { AudioFormatError } from "./errors.js";

/** The input/output rates the server accepts. */
export const SUPPORTED_SAMPLE_RATES: readonly number[] = [8000, 16000, 24000, 48000];

const SAMPLE_BYTES = 2;

/** Mono PCM s16le audio and its sample rate. */
export interface PcmAudio {
  readonly pcm: Uint8Array;
  readonly sampleRateHz: number;
}

/** Length of PCM s16le audio in milliseconds (rounded down). */
export function durationMs(audio: PcmAudio): number {
  return Math.floor((Math.floor(audio.pcm.length / SAMPLE_BYTES) * 1000) / audio.sampleRateHz);
}

/** `durationMs` of digital silence at `sampleRateHz`. */
export function silence(durationMs: number, sampleRateHz: number): Uint8Array {
  return new Uint8Array(Math.floor((sampleRateHz * durationMs) / 1000) * SAMPLE_BYTES);
}

/**
 * Parse a WAV file's bytes as mono 16-bit PCM.
 *
 * @throws AudioFormatError not a PCM WAV, not 16-bit, or a rate other than 8/16/24/48 kHz.
 */
export function parseWav(bytes: Uint8Array, name = "WAV input"): PcmAudio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  const convert = "convert it with `ffmpeg -i IN -ac 1 -ar 16000 -c:a pcm_s16le OUT.wav`";
  if (bytes.length < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") {
    throw new AudioFormatError(`${name}: not a WAV file; ${convert}`);
  }
  let format: { encoding: number; channels: number; rate: number; bits: number } | undefined;
  let data: Uint8Array | undefined;
  for (let at = 12; at + 8 <= bytes.length; ) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    const body = bytes.subarray(at + 8, Math.min(at + 8 + size, bytes.length));
    if (id === "fmt " && body.length >= 16) {
      format = {
        encoding: view.getUint16(at + 8, true),
        channels: view.getUint16(at + 10, true),
        rate: view.getUint32(at + 12, true),
        bits: view.getUint16(at + 22, true),
      };
    } else if (id === "data") {
      data = body;
      break;
    }
    at += 8 + size + (size % 2); // chunks are padded to an even length
  }
  if (format === undefined || data === undefined) {
    throw new AudioFormatError(`${name}: a WAV file without fmt or data chunk; ${convert}`);
  }
  // 1 is PCM; 0xFFFE (WAVE_FORMAT_EXTENSIBLE) is how many tools write plain PCM too.
  if ((format.encoding !== 1 && format.encoding !== 0xfffe) || format.bits !== 16) {
    throw new AudioFormatError(
      `${name}: ${format.bits}-bit samples (format ${format.encoding}); Sonicwire needs 16-bit ` +
        "PCM. Convert with `sox IN -b 16 OUT.wav` or `ffmpeg -i IN -c:a pcm_s16le OUT.wav`",
    );
  }
  if (!SUPPORTED_SAMPLE_RATES.includes(format.rate)) {
    throw new AudioFormatError(
      `${name}: sample rate ${format.rate} Hz; Sonicwire accepts ` +
        `${SUPPORTED_SAMPLE_RATES.join(", ")} Hz. Resample with \`sox IN -r 16000 OUT.wav\``,
    );
  }
  const channels = Math.max(format.channels, 1);
  const frameBytes = SAMPLE_BYTES * channels;
  const frames = Math.floor(data.length / frameBytes);
  const pcm = new Uint8Array(frames * SAMPLE_BYTES);
  if (channels === 1) {
    pcm.set(data.subarray(0, pcm.length));
  } else {
    const input = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const output = new DataView(pcm.buffer);
    for (let frame = 0; frame < frames; frame++) {
      let sum = 0;
      for (let c = 0; c < channels; c++) {
        sum += input.getInt16(frame * frameBytes + c * SAMPLE_BYTES, true);
      }
      output.setInt16(frame * SAMPLE_BYTES, Math.floor(sum / channels), true);
    }
  }
  return { pcm, sampleRateHz: format.rate };
}

/** Read a WAV file as mono 16-bit PCM (see {@link parseWav}). */
export async function readWav(path: string): Promise<PcmAudio> {
  return parseWav(new Uint8Array(await readFile(path)), path);
}

/** Encode mono PCM s16le as a canonical 44-byte-header WAV file. */
export function encodeWav(audio: PcmAudio): Uint8Array {
  const size = audio.pcm.length - (audio.pcm.length % SAMPLE_BYTES);
  const out = new Uint8Array(44 + size);
  const view = new DataView(out.buffer);
  const ascii = (at: number, text: string) => {
    for (let i = 0; i < text.length; i++) out[at + i] = text.charCodeAt(i);
  };
  ascii(0, "RIFF");
  view.setUint32(4, 36 + size, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, audio.sampleRateHz, true);
  view.setUint32(28, audio.sampleRateHz * SAMPLE_BYTES, true);
  view.setUint16(32, SAMPLE_BYTES, true);
  view.setUint16(34, 8 * SAMPLE_BYTES, true);
  ascii(36, "data");
  view.setUint32(40, size, true);
  out.set(audio.pcm.subarray(0, size), 44);
  return out;
}

/** Write mono PCM s16le as a WAV file. */
export async function writeWav(path: string, audio: PcmAudio): Promise<void> {
  await writeFile(path, encodeWav(audio));
}

/** Split PCM s16le into `chunkMs` chunks (the last one may be shorter). */
export function* iterChunks(audio: PcmAudio, chunkMs = 20): Generator<Uint8Array> {
  if (!(chunkMs > 0)) {
    throw new RangeError("chunkMs must be positive");
  }
  const size = Math.max(Math.floor((audio.sampleRateHz * chunkMs) / 1000), 1) * SAMPLE_BYTES;
  const usable = audio.pcm.length - (audio.pcm.length % SAMPLE_BYTES);
  for (let start = 0; start < usable; start += size) {
    yield audio.pcm.subarray(start, Math.min(start + size, usable));
  }
}

/** Anything audio can be sent to; a `Conversation` is one. */
export interface AudioSink {
  sendAudio(audio: Uint8Array): void;
}

export interface StreamAudioOptions {
  /** Chunk length; 20 ms is what a live microphone sends. */
  chunkMs?: number;
  /** 1 for real time, 2 for twice as fast, 0 for no pacing at all. */
  speed?: number;
  /** Called after each chunk with (sentMs, totalMs). */
  onProgress?: (sentMs: number, totalMs: number) => void;
  /** Stops streaming early. */
  signal?: AbortSignal;
}

/**
 * Send audio in `chunkMs` chunks paced like a live microphone: chunk i is sent at
 * `i * chunkMs / speed` after the start, so no drift accumulates. Returns the milliseconds sent.
 */
export async function streamAudio(
  sink: AudioSink,
  audio: PcmAudio,
  options: StreamAudioOptions = {},
): Promise<number> {
  const { chunkMs = 20, speed = 1, onProgress, signal } = options;
  const start = performance.now();
  const totalMs = durationMs(audio);
  let samples = 0;
  let index = 0;
  for (const chunk of iterChunks(audio, chunkMs)) {
    if (speed > 0) {
      const due = start + (index * chunkMs) / speed;
      // Node's timers work in whole milliseconds from a cached loop time and can fire a little
      // early: sleep again until the chunk is really due, so it never goes out ahead of time.
      for (let delay = due - performance.now(); delay > 0; delay = due - performance.now()) {
        await sleep(Math.ceil(delay), undefined, { signal });
      }
    }
    signal?.throwIfAborted();
    sink.sendAudio(chunk);
    samples += chunk.length / SAMPLE_BYTES;
    index++;
    onProgress?.(Math.floor((samples * 1000) / audio.sampleRateHz), totalMs);
  }
  return Math.floor((samples * 1000) / audio.sampleRateHz);
}
