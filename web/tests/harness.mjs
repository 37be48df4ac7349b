// What every page test shares: the server under test ($TOLK_URL), where artifacts go
// ($TOLK_ARTIFACTS, default target/browser), Debian's chromium (headless, no download), a
// list of checks printed as they are made (the process fails if one did), a page watched for
// requests that leave the server and for script errors, and axe-core's accessibility check.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export const url = process.env.TOLK_URL;
export const out = process.env.TOLK_ARTIFACTS || 'target/browser';
if (!url) throw new Error('TOLK_URL is not set');
mkdirSync(out, { recursive: true });
const host = new URL(url).host;

const failures = [];
export const check = (ok, what) => { if (!ok) failures.push(what); console.log((ok ? 'ok   ' : 'FAIL ') + what); };

// Runs `body(browser)` with chromium started (extra command-line `args`), then exits
// non-zero, saying how many checks failed, if any did.
export async function run(body, args = []) {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', ...args] });
  try {
    await body(browser);
  } finally {
    await browser.close();
  }
  if (failures.length) {
    console.error(`${failures.length} check(s) failed`);
    process.exit(1);
  }
}

// Watches `page` from now on; `done()` checks that no request went anywhere but the server
// and that no script failed (`expected(text)`: console errors the test provokes itself).
export function watch(page, expected = () => false) {
  const outside = [];
  const errors = [];
  const elsewhere = (u) => { const x = new URL(u); return x.protocol !== 'blob:' && x.host !== host; };
  page.on('request', (r) => { if (elsewhere(r.url())) outside.push(r.url()); });
  page.on('websocket', (ws) => { if (elsewhere(ws.url())) outside.push(ws.url()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !expected(m.text())) errors.push(m.text()); });
  return {
    done() {
      check(outside.length === 0, `no request leaves the server: ${outside.join(', ') || 'none'}`);
      check(errors.length === 0, `no script error: ${errors.join('; ') || 'none'}`);
    },
  };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// No serious or critical accessibility violation on `page` (axe-core, run in the page by the
// driver: the page's CSP forbids loading it any other way).
export async function accessible(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const found = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact}: ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  check(found.length === 0, `no serious or critical accessibility violation (axe-core): ${found.join('; ') || 'none'}`);
}
