// Sonicwire audio worklets: microphone capture and assistant playback.
//
// Both run at the AudioContext's own rate (the device rate: the page never forces one, since
// a context whose rate differs from the microphone's breaks MediaStreamSource in Firefox) and
// resample with a windowed-sinc filter, so the 16 kHz stream the server hears has no aliasing.

/** Streaming windowed-sinc resampler for any pair of rates. */
class SincResampler {
  /**
   * @param {number} inRate input samples per second
   * @param {number} outRate output samples per second
   * @param {number} zeroCrossings half-length of the kernel in zero crossings of the sinc
   */
  constructor(inRate, outRate, zeroCrossings = 12) {
    this.step = inRate / outRate; // input samples per output sample
    // Cut off a little below the lower Nyquist frequency to leave a transition band.
    this.cutoff = Math.min(1, outRate / inRate) * 0.92;
    this.halfWidth = Math.ceil(zeroCrossings / this.cutoff); // input samples on each side
    this.phases = 256; // kernel table entries per input sample
    const size = this.halfWidth * this.phases + 2;
    this.kernel = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const x = i / this.phases;
      if (x >= this.halfWidth) continue;
      const u = x / this.halfWidth;
      const blackman = 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
      const arg = Math.PI * this.cutoff * x;
      const sinc = arg === 0 ? 1 : Math.sin(arg) / arg;
      this.kernel[i] = this.cutoff * sinc * blackman;
    }
    this.buffer = new Float32Array(4096);
    this.out = new Float32Array(1024);
    this.reset();
  }

  /** Forget all history (after a flush). */
  reset() {
    this.buffer.fill(0, 0, this.halfWidth);
    this.length = this.halfWidth; // starts with halfWidth zeros of history
    this.time = this.halfWidth; // position of the next output sample in `buffer`
  }

  /**
   * Resample a block. The returned array is reused by the next call: consume it first.
   * @param {Float32Array} input
   * @returns {Float32Array}
   */
  process(input) {
    if (this.length + input.length > this.buffer.length) {
      const grown = new Float32Array(2 * (this.length + input.length));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(input, this.length);
    this.length += input.length;
    const maxOut = Math.ceil(input.length / this.step) + 2;
    if (this.out.length < maxOut) this.out = new Float32Array(2 * maxOut);
    const { buffer, kernel, phases, halfWidth: hw } = this;
    let t = this.time;
    let n = 0;
    while (Math.floor(t) + hw < this.length) {
      const center = Math.floor(t);
      const frac = t - center;
      let acc = 0;
      for (let k = 1 - hw; k <= hw; k++) {
        const pos = Math.abs(frac - k) * phases;
        const i = pos | 0;
        const h = kernel[i] + (kernel[i + 1] - kernel[i]) * (pos - i);
        acc += buffer[center + k] * h;
      }
      this.out[n++] = acc;
      t += this.step;
    }
    const keep = Math.max(0, Math.floor(t) - hw);
    buffer.copyWithin(0, keep, this.length);
    this.length -= keep;
    this.time = t - keep;
    return this.out.subarray(0, n);
  }

  /** Input samples still held back; pushing this many zeros flushes the tail. */
  get delay() {
    return this.halfWidth;
  }
}

/**
 * Microphone capture: mixes to mono, resamples to `targetRate` (16 kHz) and posts 20 ms
 * frames of PCM s16le to the page, each with its RMS level.
 */
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.targetRate = opts.targetRate || 16000;
    this.frameSamples = Math.round((this.targetRate * (opts.frameMs || 20)) / 1000);
    this.resampler = new SincResampler(sampleRate, this.targetRate);
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.sumSquares = 0;
    this.mono = new Float32Array(128);
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === 'stop') this.running = false;
    };
  }

  process(inputs) {
    if (!this.running) return false;
    const channels = inputs[0];
    if (!channels || channels.length === 0 || channels[0].length === 0) return true;
    const frames = channels[0].length;
    if (this.mono.length < frames) this.mono = new Float32Array(frames);
    const mono = this.mono.subarray(0, frames);
    mono.set(channels[0]);
    for (let c = 1; c < channels.length; c++) {
      for (let i = 0; i < frames; i++) mono[i] += channels[c][i];
    }
    if (channels.length > 1) for (let i = 0; i < frames; i++) mono[i] /= channels.length;
    const out = this.resampler.process(mono);
    for (let i = 0; i < out.length; i++) {
      const s = Math.max(-1, Math.min(1, out[i]));
      this.sumSquares += s * s;
      this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === this.frameSamples) {
        const rms = Math.sqrt(this.sumSquares / this.frameSamples);
        this.port.postMessage({ type: 'audio', pcm: this.frame.buffer, rms }, [this.frame.buffer]);
        this.frame = new Int16Array(this.frameSamples);
        this.filled = 0;
        this.sumSquares = 0;
      }
    }
    return true;
  }
}

/**
 * Assistant playback from a ring buffer. Messages from the page:
 *   {type: 'audio', turnId, rate, samples: Float32Array}  queue audio of a turn
 *   {type: 'end', turnId}                                 the turn's audio is complete
 *   {type: 'flush'}                                       drop everything queued, now
 * It posts {type: 'progress', turns: [{turnId, playedMs}], bufferedMs} about every 100 ms
 * while playing, and once more when the buffer runs dry or is flushed.
 */
class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.capacity = Math.round(sampleRate * 30);
    this.ring = new Float32Array(this.capacity);
    this.readPos = 0; // absolute sample counts
    this.writePos = 0;
    this.segments = []; // [{turnId, end}] in write order
    this.played = new Map(); // turnId -> samples played
    this.changed = new Set();
    this.resampler = null;
    this.resamplerRate = 0;
    this.sinceReport = 0;
    this.reportEvery = Math.round(sampleRate / 10);
    this.wasPlaying = false;
    this.dropped = 0;
    this.energy = 0; // sum of squares played since the last report (the output level)
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(msg) {
    if (!msg) return;
    if (msg.type === 'audio') this.push(msg.turnId, msg.rate, msg.samples);
    else if (msg.type === 'end') this.endTurn(msg.turnId);
    else if (msg.type === 'flush') this.flush();
  }

  convert(rate, samples) {
    if (rate === sampleRate) return samples;
    if (!this.resampler || this.resamplerRate !== rate) {
      this.resampler = new SincResampler(rate, sampleRate);
      this.resamplerRate = rate;
    }
    return this.resampler.process(samples);
  }

  push(turnId, rate, samples) {
    const data = this.convert(rate, samples);
    let n = data.length;
    let offset = 0;
    if (n > this.capacity) {
      offset = n - this.capacity;
      n = this.capacity;
    }
    const overflow = this.writePos - this.readPos + n - this.capacity;
    if (overflow > 0) {
      this.dropped += overflow; // should not happen: the server paces at real time
      this.advance(overflow);
    }
    for (let i = 0; i < n; i++) this.ring[(this.writePos + i) % this.capacity] = data[offset + i];
    this.writePos += n;
    const last = this.segments[this.segments.length - 1];
    if (last && last.turnId === turnId) last.end = this.writePos;
    else this.segments.push({ turnId, end: this.writePos });
    if (!this.played.has(turnId)) this.played.set(turnId, 0);
  }

  endTurn(turnId) {
    // Push the resampler's held-back tail through with silence, if the turn is still queued
    // (not flushed, not a turn without audio).
    const last = this.segments[this.segments.length - 1];
    if (this.resampler && last && last.turnId === turnId) {
      this.push(turnId, this.resamplerRate, new Float32Array(this.resampler.delay));
    }
  }

  flush() {
    this.readPos = this.writePos;
    this.segments = [];
    if (this.resampler) this.resampler.reset();
    this.report();
  }

  /** Move the read position by n samples, crediting them to their turns. */
  advance(n) {
    const end = this.readPos + n;
    let pos = this.readPos;
    while (pos < end && this.segments.length > 0) {
      const seg = this.segments[0];
      const upTo = Math.min(end, seg.end);
      this.played.set(seg.turnId, (this.played.get(seg.turnId) || 0) + (upTo - pos));
      this.changed.add(seg.turnId);
      pos = upTo;
      if (pos >= seg.end) this.segments.shift();
    }
    this.readPos = end;
  }

  report() {
    const turns = [];
    for (const turnId of this.changed) {
      turns.push({ turnId, playedMs: Math.floor((this.played.get(turnId) * 1000) / sampleRate) });
    }
    this.changed.clear();
    const bufferedMs = Math.floor(((this.writePos - this.readPos) * 1000) / sampleRate);
    const rms = this.sinceReport > 0 ? Math.sqrt(this.energy / this.sinceReport) : 0;
    this.port.postMessage({ type: 'progress', turns, bufferedMs, dropped: this.dropped, rms });
    this.sinceReport = 0;
    this.energy = 0;
  }

  process(inputs, outputs) {
    const output = outputs[0];
    const first = output[0];
    const frames = first.length;
    const available = this.writePos - this.readPos;
    const n = Math.min(frames, available);
    for (let i = 0; i < n; i++) {
      const v = this.ring[(this.readPos + i) % this.capacity];
      first[i] = v;
      this.energy += v * v;
    }
    first.fill(0, n);
    for (let c = 1; c < output.length; c++) output[c].set(first);
    if (n > 0) {
      this.advance(n);
      this.sinceReport += n;
    }
    const playing = this.writePos > this.readPos;
    if (this.sinceReport >= this.reportEvery || (this.wasPlaying && !playing)) this.report();
    this.wasPlaying = playing;
    return true;
  }
}

registerProcessor('sonicwire-capture', CaptureProcessor);
registerProcessor('sonicwire-playback', PlaybackProcessor);
