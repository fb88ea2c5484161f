// The page as a product, in headless Debian Chromium driven by playwright-core.
//
// Usage: node product.mjs '<json options>'
//   {url, chromium, wav, microphone: true|false, scenario, timeoutMs, screenshots: {name: path}, axe}
// Scenarios (each prints one JSON result line at the end: {ok, stage, error, ...}):
//   gateway-down  load the page, ask the test to stop the gateway, press Start: what is said
//   drain         live, a typed turn answered; the test drains and restarts the gRPC server;
//                 the gateway resumes upstream (or the page starts anew when it cannot) and a
//                 second typed turn is answered
//   text-only     no microphone: type, wait past the server's idle limit, type again
//   mute          mute while the fake microphone speaks, unmute before its second utterance
//   tour          devices, latency, interruption note, exports, axe scans and screenshots
//                 at desktop and phone sizes
// The script talks to the Python test through lines: it prints {"signal": NAME} and waits for
// one line on stdin before going on (the test stops or restarts servers meanwhile).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const options = JSON.parse(process.argv[2] || '{}');
const timeoutMs = options.timeoutMs || 30000;
const result = { ok: false, stage: 'launch', error: null, consoleErrors: [] };
const stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function signal(name) {
  console.log(JSON.stringify({ signal: name }));
  const { value } = await stdinLines.next();
  return value;
}

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const userDataDir = mkdtempSync(join(tmpdir(), 'sonicwire-chromium-'));
const downloadsDir = mkdtempSync(join(tmpdir(), 'sonicwire-downloads-'));
let context;
let page;

const stats = () => page.evaluate(() => window.sonicwire.stats);
const waitFor = async (stage, predicate, arg = null, timeout = timeoutMs) => {
  result.stage = stage;
  await page.waitForFunction(predicate, arg, { timeout, polling: 100 });
};
const typeMessage = async (text) => {
  await page.fill('#text-input', text);
  await page.click('#send');
};
const repliedTo = (text) => waitFor(`reply to ${text}`, (t) =>
  window.sonicwire.stats.transcripts.some((x) => x.role === 'assistant' && x.text === `You said: ${t}`), text);

async function axeScan(label) {
  await page.addScriptTag({ path: options.axe });
  const found = await page.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ['violations'] });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  result.axe.push({ label, violations: found });
}

async function shoot(name) {
  const path = options.screenshots && options.screenshots[name];
  if (path) await page.screenshot({ path, fullPage: true });
}

async function scenarioGatewayDown() {
  result.stage = 'load';
  await page.goto(options.url);
  result.stage = 'stop gateway';
  await signal('stop-gateway');
  await page.click('#start');
  await waitFor('error shown', () => window.sonicwire.stats.state === 'error');
  result.banner = await page.textContent('#error');
  result.focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
}

async function scenarioDrain() {
  await page.goto(options.url);
  await page.click('#start');
  await waitFor('connect', () => window.sonicwire.stats.state === 'live');
  await typeMessage('before the restart');
  await repliedTo('before the restart');
  result.firstSession = (await stats()).sessionId;
  result.stage = 'drain';
  await signal('drain');
  result.pillDuringDrain = await page.textContent('#state');
  // The test answers once the new server holds a conversation: the gateway resumed this one
  // upstream (shared store), or the page started a new one (the resume was refused).
  await signal('restart');
  await waitFor('live again', () => window.sonicwire.stats.state === 'live', null, 60000);
  await typeMessage('after the restart');
  await repliedTo('after the restart');
  result.separators = await page.$$eval('#transcripts li[data-role="separator"]', (items) => items.map((li) => li.textContent));
}

async function scenarioTextOnly() {
  await page.goto(options.url);
  // Typing with nothing running starts a text-only conversation (no microphone prompt).
  await typeMessage('hello there');
  await waitFor('connect', () => window.sonicwire.stats.state === 'live');
  await repliedTo('hello there');
  result.stage = 'past the idle limit';
  await page.waitForTimeout(options.idleWaitMs || 5000);
  result.stateAfterWait = (await stats()).state;
  await typeMessage('still here');
  await repliedTo('still here');
  result.errorHidden = await page.$eval('#error', (el) => el.hidden);
}

async function scenarioMute() {
  await page.goto(options.url);
  await page.click('#start');
  await waitFor('connect', () => window.sonicwire.stats.state === 'live');
  await page.click('#mute');
  result.mutePressed = await page.getAttribute('#mute', 'aria-pressed');
  result.pillWhileMuted = await page.textContent('#state');
  // The fake microphone says its first utterance now; the server must not hear it.
  await page.waitForTimeout(options.muteMs || 5000);
  result.whileMuted = await stats();
  await page.click('#mute');
  await waitFor('second utterance heard', () => window.sonicwire.stats.speechStarted >= 1);
  result.afterUnmute = await stats();
}

async function scenarioTour() {
  result.axe = [];
  await page.setViewportSize(DESKTOP);
  await page.goto(options.url);
  await axeScan('desktop: first sight');
  await shoot('desktop-start');
  await page.click('#start');
  await waitFor('connect', () => window.sonicwire.stats.state === 'live');
  result.focusAfterStart = await page.evaluate(() => document.activeElement && document.activeElement.id);
  result.keyReadOnly = await page.$eval('#api-key', (el) => el.readOnly);
  result.micOptions = await page.$$eval('#mic-select option', (o) => o.length);
  result.devices = (await stats()).devices;
  // The fake microphone's utterance is echoed; a typed message interrupts the echo.
  await waitFor('assistant audio', () => window.sonicwire.stats.turns.some((t) => t.playedMs >= 300));
  await typeMessage('hello there');
  await waitFor('interruption', () => window.sonicwire.stats.interruptions >= 1);
  await repliedTo('hello there');
  await waitFor('latency shown', () => document.getElementById('latency').textContent.endsWith(' ms'));
  result.latencyText = await page.textContent('#latency');
  result.metas = await page.$$eval('#transcripts li .meta', (items) => items.map((li) => li.textContent));
  await page.click('#settings summary');
  await page.click('#dev summary');
  result.logLines = await page.$$eval('#event-log li', (items) => items.length);
  result.configLine = await page.$eval('#event-log li', (li) => li.textContent);
  await axeScan('desktop: live, settings and log open');
  await shoot('desktop-live');

  result.stage = 'export';
  const [textDownload] = await Promise.all([page.waitForEvent('download'), page.click('#export-text')]);
  result.exportText = readFileSync(await textDownload.path(), 'utf8');
  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
  result.exportJson = JSON.parse(readFileSync(await jsonDownload.path(), 'utf8'));

  result.stage = 'phone';
  await page.setViewportSize(PHONE);
  await axeScan('phone: live');
  result.smallTargets = await page.evaluate(() => [...document.querySelectorAll('button, input, select, summary, textarea')]
    .filter((el) => el.offsetParent !== null && el.type !== 'checkbox')
    .map((el) => ({ id: el.id || el.textContent.trim().slice(0, 20), h: el.getBoundingClientRect().height }))
    .filter((t) => t.h < 44));
  await shoot('phone-live');
  await page.click('#start'); // Stop
  await waitFor('stopped', () => window.sonicwire.stats.state === 'idle');
  await page.click('#settings summary');
  await page.click('#dev summary');
  await axeScan('phone: stopped');
  await shoot('phone-stopped');
  result.stage = 'clear';
  await page.click('#clear');
  result.linesAfterClear = await page.$$eval('#transcripts li', (items) => items.length);
}

const SCENARIOS = {
  'gateway-down': scenarioGatewayDown,
  drain: scenarioDrain,
  'text-only': scenarioTextOnly,
  mute: scenarioMute,
  tour: scenarioTour,
};

try {
  const args = [
    '--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream',
  ];
  if (options.microphone !== false) {
    args.push('--use-fake-ui-for-media-stream');
    if (options.wav) args.push(`--use-file-for-fake-audio-capture=${options.wav}%noloop`);
  }
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: options.chromium || '/usr/bin/chromium',
    headless: true,
    args,
    viewport: DESKTOP,
    acceptDownloads: true,
    downloadsPath: downloadsDir,
    bypassCSP: Boolean(options.axe), // axe-core is injected as a script tag
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error') result.consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => result.consoleErrors.push(String(err)));
  page.setDefaultTimeout(timeoutMs);
  await SCENARIOS[options.scenario]();
  result.stats = await stats();
  result.transcripts = await page.$$eval('#transcripts li', (items) => items.map((li) => ({
    role: li.dataset.role, final: li.dataset.final === 'true', text: li.querySelector('.text').textContent,
  })));
  result.ok = true;
  result.stage = 'done';
} catch (err) {
  result.error = String(err && err.message ? err.message : err);
  try {
    if (page) result.stats = await page.evaluate(() => window.sonicwire && window.sonicwire.stats);
  } catch {
    // the browser is gone; report what we have
  }
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
  rmSync(downloadsDir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
