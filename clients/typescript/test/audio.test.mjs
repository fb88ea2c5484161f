// Unit tests of the audio helpers: WAV parsing (mono, stereo mix-down, rejected formats), the
// WAV writer, chunking and real-time pacing.
import assert from "node:assert/strict";
import { test } from "node:test";

import { AudioFormatError, durationMs, encodeWav, iterChunks, parseWav, streamAudio } from "@sonicwire/client";

function wav({ rate = 16000, channels = 1, bits = 16, format = 1, samples = [] }) {
  const data = new Uint8Array(samples.length * (bits / 8));
  const view = new DataView(data.buffer);
  samples.forEach((s, i) => bits === 16 && view.setInt16(i * 2, s, true));
  const header = new Uint8Array(44 + 8 + 4);
  const h = new DataView(header.buffer);
  const ascii = (at, text) => [...text].forEach((c, i) => (header[at + i] = c.charCodeAt(0)));
  ascii(0, "RIFF");
  h.setUint32(4, header.length - 8 + data.length, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  h.setUint32(16, 16, true);
  h.setUint16(20, format, true);
  h.setUint16(22, channels, true);
  h.setUint32(24, rate, true);
  h.setUint32(28, (rate * channels * bits) / 8, true);
  h.setUint16(32, (channels * bits) / 8, true);
  h.setUint16(34, bits, true);
  ascii(36, "LIST"); // an extra chunk before data, as many tools write
  h.setUint32(40, 3, true); // odd size: padded to 4
  ascii(48, "data");
  const out = new Uint8Array(header.length + 4 + data.length);
  out.set(header.subarray(0, 48));
  out.set(header.subarray(48, 52), 48);
  new DataView(out.buffer).setUint32(52, data.length, true);
  out.set(data, 56);
  return out;
}

test("mono 16-bit PCM is read as is; the writer round-trips it", () => {
  const audio = parseWav(wav({ samples: [1, -2, 300, -32768] }));
  assert.equal(audio.sampleRateHz, 16000);
  assert.deepEqual([...new Int16Array(audio.pcm.slice().buffer)], [1, -2, 300, -32768]);
  const again = parseWav(encodeWav(audio));
  assert.deepEqual([...again.pcm], [...audio.pcm]);
});

test("stereo is mixed down to mono", () => {
  const audio = parseWav(wav({ channels: 2, rate: 48000, samples: [100, 300, -100, -301] }));
  assert.equal(audio.sampleRateHz, 48000);
  assert.deepEqual([...new Int16Array(audio.pcm.slice().buffer)], [200, -201]);
});

test("unsupported files are rejected with a conversion hint", () => {
  assert.throws(() => parseWav(wav({ rate: 11025, samples: [0] })), (e) => e instanceof AudioFormatError && /11025 Hz.*sox/.test(e.message));
  assert.throws(() => parseWav(wav({ bits: 8, samples: [0] })), (e) => e instanceof AudioFormatError && /8-bit/.test(e.message));
  assert.throws(() => parseWav(new TextEncoder().encode("not a wav file at all")), AudioFormatError);
});

test("chunks of 20 ms, paced at real time without drift", async () => {
  const audio = { pcm: new Uint8Array(16000 * 2 * 0.2 + 2), sampleRateHz: 16000 }; // 200 ms + 1 sample
  const chunks = [...iterChunks(audio, 20)];
  assert.deepEqual(chunks.map((c) => c.length), [...Array(10).fill(640), 2]);
  assert.equal(durationMs(audio), 200);
  const sent = [];
  const start = performance.now();
  const ms = await streamAudio({ sendAudio: (c) => sent.push([performance.now() - start, c.length]) }, audio, { speed: 2 });
  assert.equal(ms, 200);
  assert.equal(sent.length, 11);
  // chunk i is due at i * 20 ms / 2: never early (a late timer is the machine's load, not drift)
  sent.forEach(([at], i) => assert.ok(at >= i * 10, `chunk ${i} sent at ${at} ms`));
});
