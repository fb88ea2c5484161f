// Sonicwire browser page: talk to the assistant through the WebSocket gateway.
//
// Microphone -> capture worklet (device rate -> 16 kHz PCM, 20 ms frames) -> binary frames.
// `media` events -> playback worklet (ring buffer at the device rate), flushed at once on
// `interruption`; the worklet's progress becomes `playback` reports (played_ms per turn).
// A "call" is what the user started with Start (or by typing): its audio graph outlives the
// sockets, so a server restart is bridged by reconnecting (resuming when the server gave a
// resume token) without asking for the microphone again.
// Protocol reference: docs/gateway.md.

import {
  CLOSE_MESSAGES, addLine, addSeparator, clearConversation, clearError, entries, exportConversation, logEvent,
  markInterrupted, noteTurn, rmsToLevel, setActivity, setLevel, setPill, setTurnLatency,
  showError, showNotice, ui,
} from './view.js';
import { connectMicrophone, decodeBase64Pcm, openAudio } from './audio.js';
import { applySpeaker, openMicrophone, readSettings, refreshDevices } from './devices.js';

const SUBPROTOCOL = 'sonicwire.v1';
const INPUT_RATE = 16000;
const SERVER_RATES = [8000, 16000, 24000, 48000];
const REPORT_EVERY_MS = 200;
const MAX_SOCKET_BACKLOG = 256 * 1024; // bytes queued in the socket before mic frames are dropped
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/; // what a Sec-WebSocket-Protocol token may hold
const KEEPALIVE_MS = 100; // text-only calls send this much silence this often (the server's idle timer)
const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000, 8000, 8000];
const RECONNECT_CODES = new Set([1001, 1006, 1011, 1013, 4503]);
const MAX_HELD_FRAMES = 250; // 5 s of 20 ms microphone frames kept while reconnecting
const RESUME_REFUSED = new Set(['SESSION_NOT_FOUND', 'SESSION_OWNED_ELSEWHERE', 'RESUME_UNAVAILABLE', 'RESUME_TOKEN_MISSING']);
const VAD_PRESETS = {
  high: { confidence: 0.5, min_volume: 0.3 },
  low: { confidence: 0.85, min_volume: 0.75 },
};

// Counters the end-to-end tests read (window.sonicwire.stats). `state` is the connection:
// idle, connecting, live, reconnecting or error; `activity` is what the pill shows when live.
const stats = {
  state: 'idle',
  activity: 'idle',
  sessionId: '',
  textOnly: false,
  muted: false,
  framesSent: 0,
  silentFrames: 0,
  framesDropped: 0,
  framesHeld: 0,
  mediaChunks: 0,
  mediaMs: 0,
  playedMs: 0,
  bufferedMs: 0,
  reportsSent: 0,
  // [{turnId, mediaMs, playedMs, complete}] in arrival order; complete: the server sent the
  // turn's last audio (turn_complete), so mediaMs no longer grows
  turns: [],
  interruptions: 0,
  speechStarted: 0,
  transcripts: [],
  latencies: [], // first_audio_ms of each answered turn
  errors: [],
  notices: [],
  closeCode: null,
  reconnects: 0,
  resumed: 0,
  sessions: 0,
  devices: { inputs: 0, outputs: 0 },
};
window.sonicwire = { stats };

let call = null; // the running call, see start()

/** What the device adds after the worklet counted a sample as played (the echo canceller's
 *  first guess; it confirms the real delay itself). Browsers that do not say give 0. */
function outputLatencyMs(ctx) {
  if (!ctx) return 0;
  const seconds = (ctx.outputLatency || 0) + (ctx.baseLatency || 0);
  return Math.max(0, Math.min(10000, Math.round(seconds * 1000)));
}

function turnStats(turnId) {
  let turn = stats.turns.find((t) => t.turnId === turnId);
  if (!turn) {
    turn = { turnId, mediaMs: 0, playedMs: 0, complete: false };
    stats.turns.push(turn);
  }
  return turn;
}

function fail(text) {
  stats.errors.push(text);
  showError(text);
}

function notice(text) {
  if (text) stats.notices.push(text);
  showNotice(text);
}

function setConnection(state) {
  stats.state = state;
  refreshPill();
}

/** The pill: the connection state, and once live what the conversation is doing. */
function refreshPill() {
  const c = call;
  let activity = stats.state;
  let text = { idle: 'Not connected', connecting: 'Connecting…', error: 'Disconnected' }[stats.state];
  if (stats.state === 'reconnecting') {
    text = c && c.goingAway ? 'Server restarting: reconnecting…' : 'Reconnecting…';
  } else if (stats.state === 'live' && c) {
    if (c.muted) [activity, text] = ['muted', 'Muted: the assistant cannot hear you'];
    else if (c.userSpeaking) [activity, text] = ['user-speaking', 'You are speaking…'];
    else if (stats.bufferedMs > 0) [activity, text] = ['assistant-speaking', 'Assistant speaking'];
    else if (c.thinking) [activity, text] = ['thinking', 'Thinking…'];
    else if (c.textOnly) [activity, text] = ['live', 'Live: type a message'];
    else if (c.ptt && !c.pttDown) [activity, text] = ['live', 'Live: hold to talk, or type'];
    else [activity, text] = ['live', 'Listening: speak or type'];
  }
  stats.activity = activity;
  setPill(activity, text);
}

function updateStats() {
  ui.stats.dataset.playedMs = String(stats.playedMs);
  ui.stats.dataset.mediaChunks = String(stats.mediaChunks);
  ui.played.textContent = (stats.playedMs / 1000).toFixed(1);
  ui.buffered.textContent = String(stats.bufferedMs);
}

function resetSessionStats() {
  Object.assign(stats, {
    sessionId: '', framesSent: 0, silentFrames: 0, framesDropped: 0, framesHeld: 0, mediaChunks: 0, mediaMs: 0,
    playedMs: 0, bufferedMs: 0, reportsSent: 0, turns: [], interruptions: 0, speechStarted: 0,
    latencies: [],
  });
  ui.sessionId.textContent = '–';
  ui.latency.textContent = '–';
  updateStats();
}

/** The config message for a new (or resumed) conversation, from the Settings panel. */
function configMessage(c) {
  const outputRate = SERVER_RATES.includes(c.ctx.sampleRate) ? c.ctx.sampleRate : 16000;
  const message = { action: 'config', sample_rate: INPUT_RATE, output_sample_rate: outputRate };
  // Tools answer "what time is it" in the user's zone, not the server's.
  const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (timeZone) message.time_zone = timeZone;
  const { voice, systemPrompt, vad, bargeIn } = c.settings;
  if (voice) message.voice = voice;
  if (systemPrompt) message.system_prompt = systemPrompt;
  if (!bargeIn) message.barge_in = false;
  if (VAD_PRESETS[vad]) message.vad = VAD_PRESETS[vad];
  if (c.resume) {
    message.resume_session_id = c.resume.sessionId;
    message.resume_token = c.resume.token;
  }
  return message;
}

function listDevices() {
  refreshDevices().then((counts) => {
    if (counts) stats.devices = counts;
  }).catch(() => {});
}

async function switchSpeaker(c) {
  try {
    await applySpeaker(c && c.ctx);
  } catch (err) {
    fail(`Could not switch the speaker: ${err.message}`);
  }
}

async function startAudio(c) {
  await openAudio(c, (data) => onPlaybackProgress(c, data));
  if (ui.speakerSelect.value) await switchSpeaker(c);
  if (!c.textOnly) {
    try {
      attachMicrophone(c, await openMicrophone(c.settings));
    } catch (err) {
      c.textOnly = true;
      notice(err.message);
    }
  }
  await c.ctx.resume();
}

function attachMicrophone(c, stream) {
  connectMicrophone(c, stream, INPUT_RATE, (data) => onCaptureFrame(c, data));
}

/** Is the gateway there at all? Any HTTP answer counts (503 means the gRPC server is down,
 * which the socket will report precisely). */
async function gatewayReachable() {
  try {
    await fetch('livez', { cache: 'no-store' }); // liveness: 200 while the gateway runs
    return true;
  } catch {
    return false;
  }
}

// -- the call ---------------------------------------------------------------------------------

async function start({ textOnly = false, firstText = '' } = {}) {
  if (call) return;
  clearError();
  notice('');
  const key = ui.apiKey.value.trim();
  if (key && !TOKEN.test(key)) {
    fail('The API key may only contain letters, digits and !#$%&\'*+-.^_`|~ (use a base64url key).');
    ui.settings.open = true;
    ui.apiKey.focus();
    return;
  }
  const c = {
    key, settings: readSettings(), textOnly, ws: null, ctx: null, stream: null, source: null,
    capture: null, playback: null, lastReport: new Map(), interrupted: new Map(), opened: false,
    live: false, ended: false, reconnecting: false, attempt: 0, resume: null, goingAway: false,
    muted: false, ptt: false, pttDown: false, userSpeaking: false, thinking: false,
    held: [], pendingText: firstText, keepalive: null, timer: null, resumeRefused: false,
  };
  c.ptt = c.settings.pushToTalk;
  call = c;
  ui.start.textContent = 'Stop';
  ui.start.classList.add('stop');
  ui.start.setAttribute('aria-busy', 'true');
  ui.apiKey.readOnly = true;
  setConnection('connecting');
  if (!(await gatewayReachable())) {
    finish(c, `Cannot reach the Sonicwire gateway at ${location.host}. Is it running? Start it (for example with "make run"), then press Start again.`);
    return;
  }
  if (c.ended) return;
  try {
    await startAudio(c);
  } catch (err) {
    finish(c, `Audio could not start: ${err.message}`);
    return;
  }
  if (c.ended) return;
  stats.textOnly = c.textOnly;
  if (c.textOnly) c.keepalive = setInterval(() => sendSilence(c, (INPUT_RATE * KEEPALIVE_MS) / 1000), KEEPALIVE_MS);
  ui.mute.disabled = c.textOnly;
  ui.ptt.hidden = c.textOnly || !c.ptt;
  listDevices();
  connect(c);
}

function connect(c) {
  const protocols = [SUBPROTOCOL];
  if (c.key) protocols.push(`key.${c.key}`);
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  let ws;
  try {
    ws = new WebSocket(url, protocols);
  } catch (err) {
    finish(c, `Could not open the WebSocket: ${err.message}`);
    return;
  }
  c.ws = ws;
  c.opened = false;
  c.lastError = null;
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    c.opened = true;
    const message = configMessage(c);
    ws.send(JSON.stringify(message));
    logEvent('out', { ...message, resume_token: message.resume_token ? '…' : undefined });
  };
  ws.onmessage = (event) => {
    if (typeof event.data !== 'string' || ws !== c.ws) return;
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    logEvent('in', msg.event === 'media' ? `media ${msg.turn_id} @${msg.offset_ms} ms` : msg);
    onEvent(c, msg);
  };
  ws.onclose = (event) => onClose(c, ws, event);
}

function send(c, message) {
  if (!c.ws || c.ws.readyState !== WebSocket.OPEN || !c.live) return false;
  c.ws.send(JSON.stringify(message));
  if (message.action !== 'playback') logEvent('out', message);
  return true;
}

function onSessionStarted(c, msg) {
  const resumed = Boolean(c.resume) && (msg.resumed === true || msg.session_id === c.resume.sessionId);
  if (c.reconnecting) {
    stats.reconnects += 1;
    if (resumed) {
      stats.resumed += 1;
      addSeparator('Reconnected: the conversation continues');
    } else {
      addSeparator('Reconnected as a new conversation: the assistant does not remember the earlier part');
      notice('The server could not continue the earlier conversation, so a new one started.');
    }
  } else if (entries.length > 0) {
    addSeparator('New conversation');
  }
  if (!resumed) resetSessionStats();
  stats.sessions += 1;
  c.reconnecting = false;
  c.goingAway = false;
  c.attempt = 0;
  c.live = true;
  c.resume = msg.resume_token ? { sessionId: msg.session_id, token: msg.resume_token } : null;
  stats.sessionId = msg.session_id;
  ui.sessionId.textContent = msg.session_id;
  ui.start.removeAttribute('aria-busy');
  clearError();
  setConnection('live');
  // Audio captured while the server was away is sent only into the same conversation.
  const held = c.held;
  c.held = [];
  if (resumed) held.forEach((pcm) => sendFrame(c, pcm));
  if (c.textOnly && document.activeElement === ui.start) ui.textInput.focus();
  if (c.pendingText) {
    sendText(c, c.pendingText);
    c.pendingText = '';
  }
}

function onEvent(c, msg) {
  switch (msg.event) {
    case 'session_started':
      onSessionStarted(c, msg);
      break;
    case 'media': {
      const samples = decodeBase64Pcm(msg.data);
      const ms = (samples.length * 1000) / msg.sample_rate;
      stats.mediaChunks += 1;
      stats.mediaMs += ms;
      turnStats(msg.turn_id).mediaMs += ms;
      c.thinking = false;
      c.playback.port.postMessage(
        { type: 'audio', turnId: msg.turn_id, rate: msg.sample_rate, samples }, [samples.buffer]);
      updateStats();
      break;
    }
    case 'transcript':
      addLine(msg.role, msg.text, { final: msg.final, turnId: msg.turn_id });
      if (msg.role === 'assistant') noteTurn(msg.turn_id, c.interrupted.get(msg.turn_id));
      if (msg.final) stats.transcripts.push({ role: msg.role, text: msg.text });
      if (msg.role === 'user' && msg.final) c.thinking = true;
      refreshPill();
      break;
    case 'speech_activity':
      if (msg.kind === 'started') stats.speechStarted += 1;
      c.userSpeaking = msg.kind === 'started';
      if (!c.userSpeaking) c.thinking = true;
      ui.speaking.hidden = !c.userSpeaking;
      refreshPill();
      break;
    case 'interruption':
      // Stop talking over the user: drop everything queued for playback right now.
      c.playback.port.postMessage({ type: 'flush' });
      stats.interruptions += 1;
      c.interrupted.set(msg.turn_id, { heardMs: msg.played_ms });
      markInterrupted(msg.turn_id, msg.played_ms);
      break;
    case 'turn_complete': {
      c.playback.port.postMessage({ type: 'end', turnId: msg.turn_id });
      turnStats(msg.turn_id).complete = true;
      const firstAudio = msg.latency && msg.latency.first_audio_ms;
      if (firstAudio > 0) {
        stats.latencies.push(firstAudio);
        setTurnLatency(msg.turn_id, firstAudio);
        ui.latency.textContent = `${firstAudio} ms`;
      }
      if (msg.stop_reason !== 'tool_use') c.thinking = false;
      refreshPill();
      break;
    }
    case 'tool_call':
      // Tool traffic goes to the activity line and the developer log, not the conversation:
      // screen readers should read answers, not JSON.
      setActivity(`Looking something up (${msg.name})…`);
      break;
    case 'tool_result':
      setActivity(msg.status === 'ok'
        ? `Looked up ${msg.name} in ${msg.duration_ms} ms.`
        : `The ${msg.name} lookup did not work (${msg.status.replace(/_/g, ' ')}).`);
      break;
    case 'going_away':
      c.goingAway = true;
      notice(ui.autoReconnect.checked
        ? 'The server is restarting; the page will reconnect by itself.'
        : 'The server is restarting; press Start again when it is back.');
      stats.state = 'reconnecting';
      refreshPill();
      break;
    case 'warning':
      addLine('system', `Warning: ${msg.message}`);
      break;
    case 'error':
      c.lastError = msg;
      if (msg.fatal && RESUME_REFUSED.has(msg.reason) && c.resume) return; // handled on close
      fail(`${msg.message} (${msg.reason})`);
      break;
    default:
      break;
  }
}

function sendFrame(c, pcm) {
  const ws = c.ws;
  if (ws.bufferedAmount > MAX_SOCKET_BACKLOG) {
    stats.framesDropped += 1; // the network is not keeping up; drop rather than lag
    return;
  }
  ws.send(pcm); // binary frame: raw PCM s16le, 16 kHz mono
  stats.framesSent += 1;
}

function sendSilence(c, samples) {
  if (!c.live || !c.ws || c.ws.readyState !== WebSocket.OPEN) return;
  sendFrame(c, new ArrayBuffer(samples * 2));
  stats.silentFrames += 1;
}

function onCaptureFrame(c, data) {
  if (data.type !== 'audio') return;
  const silent = c.muted || (c.ptt && !c.pttDown);
  setLevel(ui.micMeter, ui.meterBar, silent ? 0 : rmsToLevel(data.rms));
  if (c.reconnecting && !silent) {
    // Keep what the user says while the server is away (sent if the conversation resumes).
    c.held.push(data.pcm);
    stats.framesHeld += 1;
    if (c.held.length > MAX_HELD_FRAMES) c.held.shift();
    return;
  }
  // Stream only once the session has started: a wrong key or a server that is down is
  // reported first, and nothing piles up while the server gets ready.
  if (!c.live || !c.ws || c.ws.readyState !== WebSocket.OPEN) return;
  if (silent) {
    // Muted is silence, not nothing: the conversation stays open and the server's VAD
    // sees the user stop.
    sendSilence(c, data.pcm.byteLength / 2);
    return;
  }
  sendFrame(c, data.pcm);
}

function onPlaybackProgress(c, data) {
  if (data.type !== 'progress') return;
  const wasPlaying = stats.bufferedMs > 0;
  stats.bufferedMs = data.bufferedMs;
  setLevel(ui.outMeter, ui.outBar, data.bufferedMs > 0 ? rmsToLevel(data.rms || 0) : 0);
  for (const { turnId, playedMs } of data.turns) {
    turnStats(turnId).playedMs = playedMs;
    const last = c.lastReport.get(turnId) || 0;
    const drained = data.bufferedMs === 0;
    if (playedMs > last && (playedMs - last >= REPORT_EVERY_MS || drained)) {
      stats.playedMs += playedMs - last;
      c.lastReport.set(turnId, playedMs);
      const report = { action: 'playback', turn_id: turnId, played_ms: playedMs };
      const latencyMs = outputLatencyMs(c.ctx);
      if (latencyMs > 0) report.output_latency_ms = latencyMs;
      if (send(c, report)) stats.reportsSent += 1;
    }
  }
  updateStats();
  if (wasPlaying !== stats.bufferedMs > 0) refreshPill();
}

function scheduleReconnect(c) {
  if (c.attempt >= RECONNECT_DELAYS_MS.length) {
    finish(c, 'Lost the server and could not reconnect. Press Start to try again.');
    return;
  }
  const delay = RECONNECT_DELAYS_MS[c.attempt];
  c.attempt += 1;
  c.reconnecting = true;
  c.live = false;
  setConnection('reconnecting');
  logEvent('page', `reconnect attempt ${c.attempt} in ${delay} ms`);
  c.timer = setTimeout(async () => {
    c.timer = null;
    if (c.ended) return;
    if (await gatewayReachable()) connect(c);
    else scheduleReconnect(c);
  }, delay);
}

function onClose(c, ws, event) {
  if (ws !== c.ws) return; // an older socket of this call
  stats.closeCode = event.code;
  logEvent('page', `socket closed ${event.code}${event.reason ? ` ${event.reason}` : ''}`);
  if (c.ended) return; // the user pressed Stop
  const wasLive = c.live;
  c.live = false;
  const refused = c.lastError && RESUME_REFUSED.has(c.lastError.reason);
  if (refused && c.resume) {
    // The conversation could not be continued (expired, or another key): start a new one.
    c.resume = null;
    c.held = [];
    connect(c);
    return;
  }
  if (ui.autoReconnect.checked && (wasLive || c.reconnecting) && RECONNECT_CODES.has(event.code)) {
    scheduleReconnect(c);
    return;
  }
  if (event.code === 1000) {
    finish(c, '');
    setConnection('idle');
    notice('The conversation ended.');
    return;
  }
  let text = CLOSE_MESSAGES[event.code] || `Disconnected (code ${event.code}).`;
  if (event.code === 1006 && !c.opened) text = 'Could not reach the gateway (is the server running?).';
  if (event.code === 4408 && c.lastError && c.lastError.reason === 'IDLE_TIMEOUT') {
    text = 'The conversation timed out because the server heard nothing for too long. Press Start to begin again.';
  }
  if (event.reason && event.code >= 4000 && !text.includes(event.reason)) text += ` [${event.reason}]`;
  finish(c, text);
  if (event.code === 4401) {
    ui.settings.open = true;
    ui.apiKey.focus();
  }
}

/** End the call: release audio and socket, reset the controls; `error` shown if given. */
function finish(c, error) {
  c.ended = true;
  if (call === c) call = null;
  if (c.timer) clearTimeout(c.timer);
  if (c.keepalive) clearInterval(c.keepalive);
  if (c.capture) c.capture.port.postMessage({ type: 'stop' });
  if (c.stream) c.stream.getTracks().forEach((track) => track.stop());
  if (c.ctx && c.ctx.state !== 'closed') c.ctx.close();
  if (c.ws && c.ws.readyState <= WebSocket.OPEN) c.ws.close(1000);
  c.live = false;
  ui.speaking.hidden = true;
  setLevel(ui.micMeter, ui.meterBar, 0);
  setLevel(ui.outMeter, ui.outBar, 0);
  ui.start.textContent = 'Start talking';
  ui.start.classList.remove('stop');
  ui.start.removeAttribute('aria-busy');
  ui.mute.disabled = true;
  ui.mute.setAttribute('aria-pressed', 'false');
  ui.mute.textContent = 'Mute';
  ui.ptt.hidden = true;
  ui.apiKey.readOnly = false;
  stats.muted = false;
  stats.bufferedMs = 0;
  if (error) {
    fail(error);
    setConnection('error');
  } else {
    setConnection('idle');
  }
}

function sendText(c, text) {
  if (send(c, { action: 'text', text })) {
    c.thinking = true;
    refreshPill();
    return true;
  }
  return false;
}

function submitText(text) {
  if (!text) return;
  if (!call) {
    // Typing with nothing running starts a text-only conversation (no microphone prompt).
    start({ textOnly: true, firstText: text });
    notice('Text-only conversation: replies are spoken and shown here. To use the microphone, press Stop, then Start talking.');
    return;
  }
  if (!sendText(call, text)) call.pendingText = text; // sent once the session (re)starts
}

function setMuted(c, muted) {
  c.muted = muted;
  stats.muted = muted;
  ui.mute.setAttribute('aria-pressed', String(muted));
  ui.mute.textContent = muted ? 'Unmute' : 'Mute';
  refreshPill();
}

function setTalking(down) {
  if (!call || !call.ptt) return;
  call.pttDown = down;
  ui.ptt.classList.toggle('active', down);
  refreshPill();
}

// -- wiring -----------------------------------------------------------------------------------

ui.start.addEventListener('click', () => {
  if (call) {
    finish(call, '');
    notice('');
  } else {
    start();
  }
});

ui.mute.addEventListener('click', () => {
  if (call) setMuted(call, !call.muted);
});

ui.ptt.addEventListener('pointerdown', () => setTalking(true));
for (const type of ['pointerup', 'pointerleave', 'pointercancel']) {
  ui.ptt.addEventListener(type, () => setTalking(false));
}
document.addEventListener('keydown', (event) => {
  if (event.code === 'Space' && !event.repeat && call && call.ptt && !event.target.closest('input, textarea, select')) {
    event.preventDefault();
    setTalking(true);
  }
});
document.addEventListener('keyup', (event) => {
  if (event.code === 'Space') setTalking(false);
});

ui.textForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.textInput.value.trim();
  ui.textInput.value = '';
  submitText(text);
});

for (const button of document.querySelectorAll('button.example')) {
  button.addEventListener('click', () => submitText(button.textContent));
}

ui.micSelect.addEventListener('change', async () => {
  const c = call;
  if (!c || c.textOnly || !c.ctx) return;
  try {
    attachMicrophone(c, await openMicrophone({ ...c.settings, micId: ui.micSelect.value }));
  } catch (err) {
    fail(err.message);
  }
});
ui.speakerSelect.addEventListener('change', () => switchSpeaker(call));
ui.clear.addEventListener('click', () => clearConversation());
ui.exportText.addEventListener('click', () => exportConversation('text', { session_id: stats.sessionId }));
ui.exportJson.addEventListener('click', () => exportConversation('json', { session_id: stats.sessionId }));
if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
  navigator.mediaDevices.addEventListener('devicechange', listDevices);
}
listDevices();
