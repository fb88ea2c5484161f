// Error paths of the Sonicwire page in headless Chromium: what the user is told.
//
// Usage: node errors.mjs '<json options>'   {chromium, timeoutMs, scenarios: [{name, url, key}]}
// The microphone permission is NOT granted here (no --use-fake-ui-for-media-stream), so each
// scenario also shows the "microphone denied" message. For each scenario the page is opened,
// the key typed in, Start pressed, and the script waits for the page's error state. Prints one
// JSON line: {ok, results: [{name, state, closeCode, errors, banner}], error}.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const options = JSON.parse(process.argv[2] || '{}');
const timeoutMs = options.timeoutMs || 20000;
const output = { ok: false, results: [], error: null };
const userDataDir = mkdtempSync(join(tmpdir(), 'sonicwire-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: options.chromium || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream',
    ],
  });
  for (const scenario of options.scenarios) {
    const page = await context.newPage();
    await page.goto(scenario.url);
    if (scenario.key) {
      await page.click('#settings summary');
      await page.fill('#api-key', scenario.key);
    }
    await page.click('#start');
    await page.waitForFunction(() => window.sonicwire.stats.state === 'error', null,
      { timeout: timeoutMs, polling: 100 });
    const stats = await page.evaluate(() => window.sonicwire.stats);
    output.results.push({
      name: scenario.name,
      state: stats.state,
      closeCode: stats.closeCode,
      errors: stats.errors,
      notices: stats.notices,
      banner: await page.textContent('#error'),
    });
    await page.close();
  }
  output.ok = true;
} catch (err) {
  output.error = String(err && err.message ? err.message : err);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(output));
process.exit(output.ok ? 0 : 1);
