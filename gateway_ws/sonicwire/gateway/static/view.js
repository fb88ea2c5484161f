// What the page shows: the state pill, the conversation, notices, the developer log, exports.
//
// Kept apart from app.js (sockets and audio) so the controller never builds DOM itself.
// The conversation is a model (`entries`) rendered into the list, so exports come from the
// model and not from scraping the DOM.

const $ = (id) => document.getElementById(id);

export const ui = {
  start: $('start'),
  mute: $('mute'),
  ptt: $('ptt'),
  state: $('state'),
  apiKey: $('api-key'),
  notice: $('notice'),
  error: $('error'),
  micMeter: $('mic-meter'),
  meterBar: $('meter-bar'),
  outMeter: $('out-meter'),
  outBar: $('out-bar'),
  speaking: $('speaking'),
  transcripts: $('transcripts'),
  activity: $('activity'),
  textForm: $('text-form'),
  textInput: $('text-input'),
  send: $('send'),
  stats: $('stats'),
  sessionId: $('session-id'),
  played: $('played'),
  buffered: $('buffered'),
  latency: $('latency'),
  settings: $('settings'),
  micSelect: $('mic-select'),
  speakerSelect: $('speaker-select'),
  voice: $('voice'),
  systemPrompt: $('system-prompt'),
  vad: $('vad'),
  bargeIn: $('barge-in'),
  pushToTalk: $('push-to-talk'),
  browserAec: $('browser-aec'),
  autoReconnect: $('auto-reconnect'),
  eventLog: $('event-log'),
  clear: $('clear'),
  exportText: $('export-text'),
  exportJson: $('export-json'),
};

const MAX_LOG_ENTRIES = 500;

/** The conversation as data: [{role, text, final, turnId, at, interrupted, heardMs, latencyMs}]. */
export const entries = [];

export function setPill(state, text) {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
}

export function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = false;
}

export function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

export function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

/** A level 0..1 on a meter element (bar width and aria-valuenow). */
export function setLevel(meter, bar, level) {
  const percent = Math.round(Math.max(0, Math.min(1, level)) * 100);
  bar.style.width = `${percent}%`;
  meter.setAttribute('aria-valuenow', String(percent));
}

/** dBFS of an RMS value mapped to 0..1 over -60..0 dB. */
export function rmsToLevel(rms) {
  return rms > 0 ? Math.max(0, Math.min(1, (20 * Math.log10(rms) + 60) / 60)) : 0;
}

function render(entry) {
  let li = entry.li;
  if (!li) {
    li = document.createElement('li');
    const text = document.createElement('span');
    text.className = 'text';
    li.append(text);
    entry.li = li;
    ui.transcripts.append(li);
  }
  li.dataset.role = entry.role;
  li.dataset.final = String(entry.final);
  li.dataset.turnId = entry.turnId;
  li.querySelector('.text').textContent = entry.text;
  const notes = [];
  if (entry.interrupted) {
    notes.push(`Interrupted: you heard ${(entry.heardMs / 1000).toFixed(1)} s of this reply; the rest was not played.`);
  }
  if (entry.latencyMs) notes.push(`Answered ${entry.latencyMs} ms after you stopped speaking.`);
  let meta = li.querySelector('.meta');
  if (notes.length) {
    if (!meta) {
      meta = document.createElement('span');
      meta.className = 'meta';
      li.append(meta);
    }
    meta.textContent = notes.join(' ');
  } else if (meta) {
    meta.remove();
  }
  if (entry.interrupted) li.dataset.interrupted = 'true';
  ui.transcripts.scrollTop = ui.transcripts.scrollHeight;
}

/** Show text of a turn: interim text of the same role and turn is replaced by later text. */
export function addLine(role, text, { final = true, turnId = '' } = {}) {
  let entry = null;
  if (turnId) {
    entry = entries.find((e) => e.role === role && e.turnId === turnId && !e.final);
  }
  if (!entry) {
    entry = { role, text, final, turnId, at: new Date().toISOString(), interrupted: false, heardMs: 0, latencyMs: 0 };
    entries.push(entry);
  }
  entry.text = text;
  entry.final = final;
  render(entry);
  return entry;
}

export function addSeparator(text) {
  return addLine('separator', text);
}

function assistantEntries(turnId) {
  return entries.filter((e) => e.role === 'assistant' && e.turnId === turnId);
}

/** Mark a reply as cut short; later text of the same turn is marked too (see noteTurn). */
export function markInterrupted(turnId, heardMs) {
  const found = assistantEntries(turnId);
  if (found.length === 0) {
    const entry = addLine('assistant', '(reply interrupted before its text arrived)', { turnId });
    found.push(entry);
  }
  for (const entry of found) {
    entry.interrupted = true;
    entry.heardMs = heardMs;
    render(entry);
  }
}

/** Attach the turn's latency to its last assistant line. */
export function setTurnLatency(turnId, latencyMs) {
  const found = assistantEntries(turnId);
  const entry = found[found.length - 1];
  if (entry) {
    entry.latencyMs = latencyMs;
    render(entry);
  }
}

/** Re-apply a turn's interruption to text that arrived after the `interruption` event. */
export function noteTurn(turnId, interrupted) {
  if (!interrupted) return;
  for (const entry of assistantEntries(turnId)) {
    if (!entry.interrupted) {
      entry.interrupted = true;
      entry.heardMs = interrupted.heardMs;
      render(entry);
    }
  }
}

export function clearConversation() {
  entries.length = 0;
  ui.transcripts.replaceChildren();
  ui.activity.textContent = '';
}

export function setActivity(text) {
  ui.activity.textContent = text;
}

/** One line in the developer log; `direction` is 'in', 'out' or 'page'. */
export function logEvent(direction, payload) {
  const li = document.createElement('li');
  const time = new Date().toISOString().slice(11, 23);
  li.textContent = `${time} ${direction} ${typeof payload === 'string' ? payload : JSON.stringify(payload)}`;
  ui.eventLog.append(li);
  while (ui.eventLog.childElementCount > MAX_LOG_ENTRIES) ui.eventLog.firstElementChild.remove();
}

function exportable() {
  return entries.map(({ role, text, final, turnId, at, interrupted, heardMs, latencyMs }) => ({
    role, text, final, turn_id: turnId, at, interrupted, heard_ms: heardMs, latency_ms: latencyMs,
  }));
}

export function transcriptText() {
  return entries
    .filter((e) => e.final)
    .map((e) => (e.role === 'separator' ? `--- ${e.text} ---` : `${e.role}: ${e.text}${e.interrupted ? ' [interrupted]' : ''}`))
    .join('\n');
}

function download(name, type, body) {
  const url = URL.createObjectURL(new Blob([body], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function exportConversation(kind, sessionInfo) {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  if (kind === 'json') {
    const body = JSON.stringify({ exported_at: new Date().toISOString(), ...sessionInfo, entries: exportable() }, null, 2);
    download(`sonicwire-conversation-${stamp}.json`, 'application/json', body);
  } else {
    download(`sonicwire-conversation-${stamp}.txt`, 'text/plain', `${transcriptText()}\n`);
  }
}

/** What each WebSocket close code means for the user. */
export const CLOSE_MESSAGES = {
  1000: 'The conversation ended.',
  1001: 'The server went away (restart or deploy). Press Start to begin again.',
  1006: 'Lost the connection to the gateway (is it running?).',
  1007: 'The gateway received text that is not UTF-8.',
  1009: 'A message was too large for the gateway.',
  1011: 'The gateway hit an internal error.',
  1013: 'The gateway is busy. Try again in a moment.',
  4400: 'The server rejected the request.',
  4401: 'This server needs an API key, or the key is wrong: enter it under Settings › API key above and press Start.',
  4403: 'This API key is not allowed to talk to the assistant.',
  4408: 'The conversation timed out.',
  4409: 'This conversation was continued elsewhere (another tab or device).',
  4429: 'Too many messages: the connection was rate limited.',
  4500: 'The voice server failed.',
  4503: 'The voice server is unavailable (is it running?).',
  4507: 'The connection was too slow to keep up with the audio.',
};
