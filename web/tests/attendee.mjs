// The attendee page in a real browser (Debian's chromium, headless), against a running
// `tolk serve` at $TOLK_URL transcribing a real recording. Exits non-zero, saying why, if
// the page fails a user: finals shown in order, a dropped connection resumed with no gap
// and no duplicate, nothing fetched from anywhere but the server, nothing kept on the
// phone. Saves a phone-sized screenshot to $TOLK_ARTIFACTS (default target/browser).
import { chromium } from 'playwright-core';
import { violations } from './a11y.mjs';
import { mkdirSync } from 'node:fs';

const url = process.env.TOLK_URL;
const out = process.env.TOLK_ARTIFACTS || 'target/browser';
if (!url) throw new Error('TOLK_URL is not set');
mkdirSync(out, { recursive: true });
const host = new URL(url).host;

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); console.log((ok ? 'ok   ' : 'FAIL ') + what); };

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'es-AR' });
  const page = await context.newPage();
  const outside = [];
  const errors = [];
  page.on('request', (r) => { if (new URL(r.url()).host !== host) outside.push(r.url()); });
  page.on('websocket', (ws) => { if (new URL(ws.url()).host !== host) outside.push(ws.url()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  await page.goto(url + '/?channel=floor');
  const finals = () => page.$$eval('#captions .final', (ps) => ps.map((p) => Number(p.dataset.seq)));
  await page.waitForFunction(() => document.querySelectorAll('#captions .final').length >= 2, null, { timeout: 120000 });
  const before = await finals();
  check(before.every((s, i) => i === 0 || s === before[i - 1] + 1), `finals in order before the drop: ${before}`);
  const said = await page.textContent('#state');
  check(/^(en directo|los subtítulos|terminado)/.test(said) && await page.getAttribute('html', 'lang') === 'es', `the state is shown in the phone's language (es): ${said}`);

  // The network drops for 6 s: the page says so, then catches up with no gap.
  await page.evaluate(() => window.tolkDebug.disconnect(6000));
  await page.waitForTimeout(500);
  check(await page.$eval('#state', (e) => e.classList.contains('down')), 'the page says it is reconnecting');
  await page.waitForFunction((n) => document.querySelectorAll('#captions .final').length >= n + 2, before.length, { timeout: 120000 });
  const after = await finals();
  const contiguous = after.every((s, i) => i === 0 || s === after[i - 1] + 1);
  check(contiguous && after[0] === before[0], `after the drop, every final once and in order: ${after}`);
  check(!(await page.$eval('#state', (e) => e.classList.contains('down'))), 'live again');
  const text = await page.innerText('#captions');
  check(text.trim().split(/\s+/).length >= 10, `captions have words: ${text.slice(0, 120)}…`);

  await page.screenshot({ path: `${out}/attendee-phone.png` });
  const a11y = await violations(page);
  check(a11y.length === 0, `no serious or critical accessibility violation (axe-core): ${a11y.join('; ') || 'none'}`);
  check(outside.length === 0, `no request leaves the server: ${outside.join(', ') || 'none'}`);
  check((await context.cookies()).length === 0, 'no cookie');
  check(await page.evaluate(() => localStorage.length + sessionStorage.length) === 0, 'nothing in local or session storage');
  check(errors.length === 0, `no script error: ${errors.join('; ') || 'none'}`);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
