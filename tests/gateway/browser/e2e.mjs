// End-to-end check of the Sonicwire page in headless Debian Chromium, driven by playwright-core.
//
// Usage: node e2e.mjs '<json options>'
//   {url, wav, screenshot, chromium, timeoutMs, scenario: 'echo' | 'assistant', answers}
// Chromium gets the WAV file as its microphone. The script opens the page, presses Start, waits
// until the server has heard the speech, the assistant's audio has been played back and the
// transcripts are on the page ('echo', the default: the echo backend's interruption and
// playback checks; 'assistant': `answers` spoken answers of the offline assistant), takes a
// screenshot, and prints one JSON line with the result:
//   {ok, stage, stats, transcripts, consoleErrors, error}
// It exits 0 when every check passed and 1 otherwise (the JSON says which stage failed).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const options = JSON.parse(process.argv[2] || '{}');
const timeoutMs = options.timeoutMs || 45000;
const result = { ok: false, interruptedReply: null, playedReply: null, stage: 'launch', stats: null, transcripts: [], consoleErrors: [], error: null };

const userDataDir = mkdtempSync(join(tmpdir(), 'sonicwire-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: options.chromium || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${options.wav}%noloop`,
    ],
    viewport: { width: 900, height: 700 },
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error') result.consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => result.consoleErrors.push(String(err)));
  page.setDefaultTimeout(timeoutMs);

  result.stage = 'load';
  await page.goto(options.url);
  result.stage = 'start';
  await page.click('#start');

  // Waits until predicate(arg) is truthy in the page and returns that value (as JSON): a
  // check and the data it judged come from the same moment, not from two page round trips
  // between which the page moves on.
  const waitFor = async (stage, predicate, arg = null) => {
    result.stage = stage;
    const handle = await page.waitForFunction(predicate, arg, { timeout: timeoutMs, polling: 100 });
    const value = await handle.jsonValue();
    await handle.dispose();
    return value;
  };
  await waitFor('connect', () => window.sonicwire.stats.state === 'live');

  if (options.scenario === 'assistant') {
    // The offline assistant: each spoken request gets a spoken answer that plays to the end.
    const answers = options.answers || 1;
    await waitFor('server hears speech', () => window.sonicwire.stats.speechStarted >= 1);
    await waitFor('user transcripts', (n) => window.sonicwire.stats.transcripts.filter(
      (t) => t.role === 'user').length >= n, answers);
    result.playedReply = await waitFor('answers played', (n) => {
      const s = window.sonicwire.stats;
      // Played to the end: all of the reply's audio arrived (turn_complete: before it, a buffer
      // that ran dry under load only means the next chunk is late) and was played.
      const played = s.turns.filter((t) => t.complete && t.mediaMs > 0 && t.playedMs >= t.mediaMs - 50);
      return s.bufferedMs === 0 && played.length >= n && { ...played[0] };
    }, answers);
  } else {
    // 1. A long first utterance: the server hears it and echoes it back. While the reply plays,
    //    a typed message interrupts it and the page must drop the queued audio at once.
    await waitFor('server hears speech', () => window.sonicwire.stats.speechStarted >= 1);
    await waitFor('user transcript', () =>
      window.sonicwire.stats.transcripts.some((t) => t.role === 'user'));
    await waitFor('assistant audio', () => window.sonicwire.stats.mediaChunks > 0);
    await waitFor('first reply playing', () => {
      const first = window.sonicwire.stats.turns[0];
      return first !== undefined && first.playedMs >= 300;
    });
    result.stage = 'type';
    await page.fill('#text-input', 'hello there');
    await page.click('#send');
    await waitFor('interruption', () => window.sonicwire.stats.interruptions >= 1);
    await waitFor('playback flushed', () => window.sonicwire.stats.bufferedMs === 0);
    await waitFor('typed reply', () =>
      window.sonicwire.stats.transcripts.some((t) => t.text === 'You said: hello there'));
    result.interruptedReply = await page.evaluate(() => ({ ...window.sonicwire.stats.turns[0] }));

    // 2. A second utterance (real recorded speech): its reply is played to the end and the
    //    page reports what it played.
    await waitFor('second utterance heard', () => window.sonicwire.stats.speechStarted >= 2);
    result.playedReply = await waitFor('second reply played', () => {
      const s = window.sonicwire.stats;
      // (all of its audio arrived, see 'answers played', and was played)
      const played = s.turns.slice(1).find((t) => t.complete && t.mediaMs > 0 && t.playedMs >= t.mediaMs - 50);
      return s.bufferedMs === 0 && played !== undefined && { ...played };
    });
    await waitFor('playback reported', () => window.sonicwire.stats.reportsSent > 0);
  }

  result.stage = 'screenshot';
  if (options.screenshot) await page.screenshot({ path: options.screenshot, fullPage: true });
  result.transcripts = await page.$$eval('#transcripts li', (items) =>
    items.map((li) => ({ role: li.dataset.role, final: li.dataset.final === 'true', text: li.querySelector('.text').textContent,
      meta: li.querySelector('.meta') ? li.querySelector('.meta').textContent : '' })));
  result.stats = await page.evaluate(() => window.sonicwire.stats);
  result.ok = true;
  result.stage = 'done';
} catch (err) {
  result.error = String(err && err.message ? err.message : err);
  try {
    const page = context && context.pages()[0];
    if (page) {
      result.stats = await page.evaluate(() => window.sonicwire && window.sonicwire.stats);
      if (options.screenshot) await page.screenshot({ path: options.screenshot, fullPage: true });
    }
  } catch {
    // the browser is gone; report what we have
  }
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
