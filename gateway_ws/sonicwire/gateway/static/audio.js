// The page's audio graph: an AudioContext at the device's rate, the playback worklet, and the
// microphone into the capture worklet (both in audio-worklets.js). `c` is the call record of
// app.js; these functions set its ctx, playback, stream, source and capture fields.

/** Create the AudioContext and the playback worklet; its progress reports go to `onProgress`. */
export async function openAudio(c, onProgress) {
  // The AudioContext runs at the device's rate; the worklets resample.
  c.ctx = new AudioContext({ latencyHint: 'interactive' });
  await c.ctx.audioWorklet.addModule('audio-worklets.js');
  c.playback = new AudioWorkletNode(c.ctx, 'sonicwire-playback', {
    numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
  });
  c.playback.connect(c.ctx.destination);
  c.playback.port.onmessage = (event) => onProgress(event.data);
}

/** Feed ``stream`` into the capture worklet (made on first use), which posts 20 ms frames at
 * `targetRate` to `onFrame`; a previous microphone is disconnected and stopped. */
export function connectMicrophone(c, stream, targetRate, onFrame) {
  if (c.source) c.source.disconnect();
  if (c.stream && c.stream !== stream) c.stream.getTracks().forEach((track) => track.stop());
  c.stream = stream;
  c.source = c.ctx.createMediaStreamSource(stream);
  if (!c.capture) {
    c.capture = new AudioWorkletNode(c.ctx, 'sonicwire-capture', {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
      processorOptions: { targetRate, frameMs: 20 },
    });
    c.capture.connect(c.ctx.destination); // silent output; keeps the node pulled everywhere
    c.capture.port.onmessage = (event) => onFrame(event.data);
  }
  c.source.connect(c.capture);
}

/** PCM s16le in base64 (a `media` event's data) as float samples in -1..1. */
export function decodeBase64Pcm(data) {
  const binary = atob(data);
  const samples = new Float32Array(binary.length >> 1);
  for (let i = 0; i < samples.length; i++) {
    let v = binary.charCodeAt(2 * i) | (binary.charCodeAt(2 * i + 1) << 8);
    if (v >= 0x8000) v -= 0x10000;
    samples[i] = v / 0x8000;
  }
  return samples;
}
