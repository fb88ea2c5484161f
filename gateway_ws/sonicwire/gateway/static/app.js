// Sonicwire browser page: talk to the assistant through the WebSocket gateway.
//
// Microphone -> capture worklet (device rate -> 16 kHz PCM, 20 ms frames) -> binary frames.
// `media` events -> playback worklet (ring buffer at the device rate), flushed at once on
// `interruption`; the worklet's progress becomes `playback` reports (played_ms per turn).
// Protocol reference: docs/gateway.md.

const SUBPROTOCOL = 'sonicwire.v1';
const INPUT_RATE = 16000;
const SERVER_RATES = [8000, 16000, 24000, 48000];
const REPORT_EVERY_MS = 200;
const MAX_SOCKET_BACKLOG = 256 * 1024; // bytes queued in the socket before mic frames are dropped
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/; // what a Sec-WebSocket-Protocol token may hold

const CLOSE_MESSAGES = {
  1000: 'The conversation ended.',
  1001: 'The server is going away (restart or deploy). Press Start to reconnect.',
  1006: 'Lost the connection to the gateway (is it running?).',
  1007: 'The gateway received text that is not UTF-8.',
  1009: 'A message was too large for the gateway.',
  1011: 'The gateway hit an internal error.',
  1013: 'The gateway is busy. Try again in a moment.',
  4400: 'The server rejected the request.',
  4401: 'The API key is missing or wrong.',
  4403: 'This API key is not allowed to talk to the assistant.',
  4408: 'The conversation timed out.',
  4429: 'Too many messages: the connection was rate limited.',
  4500: 'The voice server failed.',
  4503: 'The voice server is unavailable (is it running?).',
  4507: 'The connection was too slow to keep up with the audio.',
};

const $ = (id) => document.getElementById(id);
const ui = {
  start: $('start'),
  state: $('state'),
  apiKey: $('api-key'),
  error: $('error'),
  meterBar: $('meter-bar'),
  speaking: $('speaking'),
  transcripts: $('transcripts'),
  textForm: $('text-form'),
  textInput: $('text-input'),
  send: $('send'),
  stats: $('stats'),
  sessionId: $('session-id'),
  played: $('played'),
  buffered: $('buffered'),
};

// Counters the end-to-end test reads (window.sonicwire.stats).
const stats = {
  state: 'idle',
  sessionId: '',
  framesSent: 0,
  framesDropped: 0,
  mediaChunks: 0,
  mediaMs: 0,
  playedMs: 0,
  bufferedMs: 0,
  reportsSent: 0,
  turns: [], // [{turnId, mediaMs, playedMs}] in arrival order
  interruptions: 0,
  speechStarted: 0,
  transcripts: [],
  errors: [],
  closeCode: null,
};
window.sonicwire = { stats };

function turnStats(turnId) {
  let turn = stats.turns.find((t) => t.turnId === turnId);
  if (!turn) {
    turn = { turnId, mediaMs: 0, playedMs: 0 };
    stats.turns.push(turn);
  }
  return turn;
}

let session = null; // the live conversation, see start()

function setState(state, text) {
  stats.state = state;
  ui.state.dataset.state = state;
  ui.state.textContent = text;
}

function showError(text) {
  stats.errors.push(text);
  ui.error.textContent = text;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

function addLine(role, text, { final = true, turnId = '' } = {}) {
  // An interim transcript is replaced by later text of the same turn and role.
  const key = `${role}:${turnId}`;
  let li = turnId ? ui.transcripts.querySelector(`li[data-key="${CSS.escape(key)}"][data-final="false"]`) : null;
  if (!li) {
    li = document.createElement('li');
    li.dataset.role = role;
    li.dataset.key = key;
    ui.transcripts.append(li);
  }
  li.dataset.final = String(final);
  li.textContent = text;
  ui.transcripts.scrollTop = ui.transcripts.scrollHeight;
}

function setLive(live) {
  ui.textInput.disabled = !live;
  ui.send.disabled = !live;
}

function updateStats() {
  ui.stats.dataset.playedMs = String(stats.playedMs);
  ui.stats.dataset.mediaChunks = String(stats.mediaChunks);
  ui.played.textContent = (stats.playedMs / 1000).toFixed(1);
}

function decodeBase64Pcm(data) {
  const binary = atob(data);
  const samples = new Float32Array(binary.length >> 1);
  for (let i = 0; i < samples.length; i++) {
    let v = binary.charCodeAt(2 * i) | (binary.charCodeAt(2 * i + 1) << 8);
    if (v >= 0x8000) v -= 0x10000;
    samples[i] = v / 0x8000;
  }
  return samples;
}

async function openMicrophone() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error('The microphone needs a secure page: open it over https or http://localhost.');
  }
  try {
    // Raw microphone audio: the server cancels echo with the audio it sent as the reference
    // (aligned by our playback reports) and suppresses noise itself. The browser's own
    // processing on top is adaptive and unrepeatable: with it, the offline recogniser misheard
    // a short command in about one run of three of the browser test; without it, never.
    return await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (err) {
    if (err.name === 'NotAllowedError' || err.name === 'SecurityError') {
      throw new Error('Microphone access was denied. Allow the microphone for this page and press Start again (typing still works).');
    }
    if (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') {
      throw new Error('No microphone was found (typing still works).');
    }
    throw new Error(`Could not open the microphone: ${err.message}`);
  }
}

async function start() {
  clearError();
  const key = ui.apiKey.value.trim();
  if (key && !TOKEN.test(key)) {
    showError('The API key may only contain letters, digits and !#$%&\'*+-.^_`|~ (use a base64url key).');
    return;
  }
  ui.start.disabled = true;
  setState('connecting', 'Connecting…');
  const s = { ws: null, ctx: null, stream: null, capture: null, playback: null, lastReport: new Map(), opened: false, ended: false };
  session = s;
  try {
    // The AudioContext runs at the device's rate; the worklets resample.
    s.ctx = new AudioContext({ latencyHint: 'interactive' });
    await s.ctx.audioWorklet.addModule('audio-worklets.js');
    s.playback = new AudioWorkletNode(s.ctx, 'sonicwire-playback', {
      numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
    });
    s.playback.connect(s.ctx.destination);
    s.playback.port.onmessage = (event) => onPlaybackProgress(s, event.data);
    try {
      s.stream = await openMicrophone();
    } catch (err) {
      showError(err.message);
    }
    if (s.stream) {
      const source = s.ctx.createMediaStreamSource(s.stream);
      s.capture = new AudioWorkletNode(s.ctx, 'sonicwire-capture', {
        numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
        processorOptions: { targetRate: INPUT_RATE, frameMs: 20 },
      });
      source.connect(s.capture);
      s.capture.connect(s.ctx.destination); // silent output; keeps the node pulled everywhere
      s.capture.port.onmessage = (event) => onCaptureFrame(s, event.data);
    }
    await s.ctx.resume();
  } catch (err) {
    showError(`Audio could not start: ${err.message}`);
    stop(s);
    setState('error', 'Audio failed');
    return;
  }
  connect(s, key);
}

function connect(s, key) {
  const protocols = [SUBPROTOCOL];
  if (key) protocols.push(`key.${key}`);
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  let ws;
  try {
    ws = new WebSocket(url, protocols);
  } catch (err) {
    showError(`Could not open the WebSocket: ${err.message}`);
    stop(s);
    setState('error', 'Not connected');
    return;
  }
  s.ws = ws;
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    s.opened = true;
    setState('connecting', 'Starting the session…');
    const outputRate = SERVER_RATES.includes(s.ctx.sampleRate) ? s.ctx.sampleRate : 16000;
    ws.send(JSON.stringify({ action: 'config', sample_rate: INPUT_RATE, output_sample_rate: outputRate }));
    ui.start.textContent = 'Stop';
    ui.start.classList.add('stop');
    ui.start.disabled = false;
  };
  ws.onmessage = (event) => {
    if (typeof event.data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    onEvent(s, msg);
  };
  ws.onclose = (event) => onClose(s, event);
}

function onEvent(s, msg) {
  switch (msg.event) {
    case 'session_started':
      stats.sessionId = msg.session_id;
      ui.sessionId.textContent = msg.session_id;
      setState('live', s.stream ? 'Live: speak or type' : 'Live: type a message');
      setLive(true);
      break;
    case 'media': {
      const samples = decodeBase64Pcm(msg.data);
      stats.mediaChunks += 1;
      stats.mediaMs += (samples.length * 1000) / msg.sample_rate;
      turnStats(msg.turn_id).mediaMs += (samples.length * 1000) / msg.sample_rate;
      s.playback.port.postMessage(
        { type: 'audio', turnId: msg.turn_id, rate: msg.sample_rate, samples }, [samples.buffer]);
      updateStats();
      break;
    }
    case 'transcript':
      addLine(msg.role, msg.text, { final: msg.final, turnId: msg.turn_id });
      if (msg.final) stats.transcripts.push({ role: msg.role, text: msg.text });
      break;
    case 'speech_activity':
      if (msg.kind === 'started') stats.speechStarted += 1;
      ui.speaking.hidden = msg.kind !== 'started';
      break;
    case 'interruption':
      // Stop talking over the user: drop everything queued for playback right now.
      s.playback.port.postMessage({ type: 'flush' });
      stats.interruptions += 1;
      addLine('system', 'Interrupted.');
      break;
    case 'turn_complete':
      s.playback.port.postMessage({ type: 'end', turnId: msg.turn_id });
      break;
    case 'tool_call':
      addLine('system', `Calling ${msg.name}(${JSON.stringify(msg.arguments ?? {})})…`);
      break;
    case 'tool_result':
      addLine('system', `${msg.name}: ${msg.status} ${JSON.stringify(msg.result ?? null)}`);
      break;
    case 'going_away':
      addLine('system', `Server going away: ${msg.reason}`);
      break;
    case 'warning':
      addLine('system', `Warning: ${msg.message}`);
      break;
    case 'error':
      showError(`${msg.message} (${msg.reason})`);
      break;
    default:
      break;
  }
}

function onCaptureFrame(s, data) {
  if (data.type !== 'audio') return;
  const level = data.rms > 0 ? Math.max(0, Math.min(1, (20 * Math.log10(data.rms) + 60) / 60)) : 0;
  ui.meterBar.style.width = `${Math.round(level * 100)}%`;
  const ws = s.ws;
  // Stream only once the session has started: a wrong key or a server that is down is
  // reported first, and nothing piles up while the server gets ready.
  if (!ws || ws.readyState !== WebSocket.OPEN || stats.state !== 'live') return;
  if (ws.bufferedAmount > MAX_SOCKET_BACKLOG) {
    stats.framesDropped += 1; // the network is not keeping up; drop rather than lag
    return;
  }
  ws.send(data.pcm); // binary frame: raw PCM s16le, 16 kHz mono
  stats.framesSent += 1;
}

function onPlaybackProgress(s, data) {
  if (data.type !== 'progress') return;
  ui.buffered.textContent = String(data.bufferedMs);
  stats.bufferedMs = data.bufferedMs;
  const ws = s.ws;
  for (const { turnId, playedMs } of data.turns) {
    turnStats(turnId).playedMs = playedMs;
    const last = s.lastReport.get(turnId) || 0;
    const drained = data.bufferedMs === 0;
    if (playedMs > last && (playedMs - last >= REPORT_EVERY_MS || drained)) {
      stats.playedMs += playedMs - last;
      s.lastReport.set(turnId, playedMs);
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ action: 'playback', turn_id: turnId, played_ms: playedMs }));
        stats.reportsSent += 1;
      }
    }
  }
  updateStats();
}

function onClose(s, event) {
  stats.closeCode = event.code;
  if (s.ended) return; // the user pressed Stop
  stop(s);
  if (event.code === 1000) {
    setState('idle', 'Conversation ended');
    return;
  }
  let text = CLOSE_MESSAGES[event.code] || `Disconnected (code ${event.code}).`;
  if (event.code === 1006 && !s.opened) {
    text = 'Could not reach the gateway (is the server running?).';
  }
  if (event.reason && event.code >= 4000) text += ` [${event.reason}]`;
  showError(text);
  setState('error', 'Disconnected');
}

function stop(s) {
  if (session === s) session = null;
  setLive(false);
  ui.speaking.hidden = true;
  ui.meterBar.style.width = '0%';
  ui.start.textContent = 'Start talking';
  ui.start.classList.remove('stop');
  ui.start.disabled = false;
  if (s.capture) s.capture.port.postMessage({ type: 'stop' });
  if (s.stream) s.stream.getTracks().forEach((track) => track.stop());
  if (s.ctx && s.ctx.state !== 'closed') s.ctx.close();
  if (s.ws && s.ws.readyState <= WebSocket.OPEN) s.ws.close(1000);
}

ui.start.addEventListener('click', () => {
  if (session) {
    session.ended = true;
    const s = session;
    stop(s);
    setState('idle', 'Not connected');
  } else {
    start();
  }
});

ui.textForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.textInput.value.trim();
  if (!text || !session || !session.ws || session.ws.readyState !== WebSocket.OPEN) return;
  session.ws.send(JSON.stringify({ action: 'text', text }));
  ui.textInput.value = '';
});
