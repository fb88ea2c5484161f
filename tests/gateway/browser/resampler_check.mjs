// Measures the page's windowed-sinc resampler (static/audio-worklets.js) outside a browser:
// prints one JSON line {cases: [{inRate, outRate, freq, gainDb, outSamples, inSamples}]}.
// Sines are fed in 128-sample render quanta, as an AudioWorklet would.

import { readFileSync } from 'node:fs';

const source = readFileSync(process.argv[2], 'utf8');
const load = new Function('AudioWorkletProcessor', 'registerProcessor', 'sampleRate',
  `${source}\nreturn SincResampler;`);
const SincResampler = load(class {}, () => {}, 48000);

function measure(inRate, outRate, freq) {
  const resampler = new SincResampler(inRate, outRate);
  const out = [];
  const total = inRate - (inRate % 128); // about one second, in whole render quanta
  for (let start = 0; start < total; start += 128) {
    const block = new Float32Array(128);
    for (let i = 0; i < 128; i++) block[i] = Math.sin((2 * Math.PI * freq * (start + i)) / inRate);
    out.push(...resampler.process(block));
  }
  const steady = out.slice(out.length >> 1);
  const rms = Math.sqrt(steady.reduce((sum, x) => sum + x * x, 0) / steady.length);
  return { inRate, outRate, freq, gainDb: 20 * Math.log10(rms * Math.SQRT2 + 1e-12), outSamples: out.length, inSamples: total };
}

const cases = [
  [48000, 16000, 1000], [48000, 16000, 5000], [48000, 16000, 10000], [48000, 16000, 20000],
  [44100, 16000, 1000], [44100, 16000, 12000], [96000, 16000, 30000],
  [16000, 48000, 1000], [16000, 44100, 3000], [24000, 48000, 5000],
];
console.log(JSON.stringify({ cases: cases.map(([a, b, f]) => measure(a, b, f)) }));
