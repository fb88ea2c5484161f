// Settings and devices: what the Settings panel says, the microphone and speaker lists, and
// opening the microphone with the chosen device and processing.

import { ui } from './view.js';

export function readSettings() {
  return {
    voice: ui.voice.value.trim(),
    systemPrompt: ui.systemPrompt.value.trim(),
    vad: ui.vad.value,
    bargeIn: ui.bargeIn.checked,
    pushToTalk: ui.pushToTalk.checked,
    browserAec: ui.browserAec.checked,
    micId: ui.micSelect.value,
  };
}

function fillSelect(select, devices, defaultLabel) {
  const chosen = select.value;
  const options = [new Option(defaultLabel, '')];
  devices.forEach((d, i) => options.push(new Option(d.label || `${defaultLabel} ${i + 1}`, d.deviceId)));
  select.replaceChildren(...options);
  if (devices.some((d) => d.deviceId === chosen)) select.value = chosen;
}

export async function refreshDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const all = await navigator.mediaDevices.enumerateDevices();
  // Before permission, browsers list devices without ids or labels: nothing to pick yet.
  const inputs = all.filter((d) => d.kind === 'audioinput' && d.deviceId && d.deviceId !== 'default');
  const outputs = all.filter((d) => d.kind === 'audiooutput' && d.deviceId && d.deviceId !== 'default');
  fillSelect(ui.micSelect, inputs, 'Default microphone');
  fillSelect(ui.speakerSelect, outputs, 'Default speaker');
  const canPickOutput = typeof AudioContext !== 'undefined' && 'setSinkId' in AudioContext.prototype;
  ui.speakerSelect.disabled = !canPickOutput;
  ui.speakerSelect.title = canPickOutput ? '' : 'This browser cannot choose the output device';
  return { inputs: inputs.length, outputs: outputs.length };
}

/** Play through the chosen speaker. Raises when the browser refuses the device. */
export async function applySpeaker(ctx) {
  if (!ctx || !('setSinkId' in ctx)) return;
  await ctx.setSinkId(ui.speakerSelect.value);
}

export async function openMicrophone(settings) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error('The microphone needs a secure page: open it over https or http://localhost.');
  }
  // Raw microphone audio by default: the server cancels echo against the audio it sent
  // (aligned by our playback reports) and suppresses noise itself. The browser's adaptive
  // processing on top made the offline recogniser mishear short commands; it stays an option
  // for rooms where the server's canceller alone is not enough.
  const aec = settings.browserAec;
  const audio = { channelCount: 1, echoCancellation: aec, noiseSuppression: aec, autoGainControl: aec };
  if (settings.micId) audio.deviceId = { exact: settings.micId };
  try {
    return await navigator.mediaDevices.getUserMedia({ audio });
  } catch (err) {
    if (err.name === 'NotAllowedError' || err.name === 'SecurityError') {
      throw new Error('Microphone access was denied, so this is a text-only conversation: type below. To talk, allow the microphone for this page, press Stop, then Start talking.');
    }
    if (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') {
      throw new Error('No microphone was found, so this is a text-only conversation: type below.');
    }
    throw new Error(`Could not open the microphone (${err.message}); this is a text-only conversation.`);
  }
}
