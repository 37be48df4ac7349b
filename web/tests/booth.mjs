// NOT RUN by `make test`: in 3 of 4 runs here the page's ingest WebSocket closes with 1006
// before its hello reaches the server (no refusal is logged); the cause is not found yet.
// Run it by hand against a server with a network channel `booth`:
//   TOLK_URL=http://127.0.0.1:8080 TOLK_BOOTH_WAV=es.wav TOLK_BOOTH_TOKEN=… node web/tests/booth.mjs
//
// The remote booth page in a real browser (Debian's chromium, headless), its microphone a
// recording ($TOLK_BOOTH_WAV through chromium's fake capture device), against a running
// `tolk serve` at $TOLK_URL whose channel `booth` takes network audio with token
// $TOLK_BOOTH_TOKEN. Exits non-zero, saying why, if the booth fails: the microphone's audio
// reaches the channel as Opus and comes back as captions of what it says, nothing fetched
// from anywhere but the server.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { violations } from './a11y.mjs';

const url = process.env.TOLK_URL;
const wav = process.env.TOLK_BOOTH_WAV;
const token = process.env.TOLK_BOOTH_TOKEN;
const out = process.env.TOLK_ARTIFACTS || 'target/browser';
if (!url || !wav || !token) throw new Error('TOLK_URL, TOLK_BOOTH_WAV and TOLK_BOOTH_TOKEN must be set');
mkdirSync(out, { recursive: true });
const host = new URL(url).host;

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); console.log((ok ? 'ok   ' : 'FAIL ') + what); };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`],
});
try {
  const context = await browser.newContext({ permissions: ['microphone'] });
  const page = await context.newPage();
  const outside = [];
  const errors = [];
  page.on('request', (r) => { if (new URL(r.url()).host !== host) outside.push(r.url()); });
  page.on('websocket', (ws) => { if (new URL(ws.url()).host !== host) outside.push(ws.url()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); else console.log('page: ' + m.text()); });

  await page.goto(url + '/booth?channel=booth');
  const a11y = await violations(page);
  check(a11y.length === 0, `no serious or critical accessibility violation (axe-core): ${a11y.join('; ') || 'none'}`);
  await page.fill('#token', token);
  await page.click('#go');
  await page.waitForFunction(() => document.getElementById('state').textContent.startsWith('sending'), null, { timeout: 20000 }).catch(() => {});
  const said = await page.textContent('#state');
  check(said === 'sending to booth (opus)', `the booth sends Opus: ${said}`);

  // An attendee reads the booth's channel.
  const reader = await context.newPage();
  await reader.goto(url + '/?channel=booth');
  await reader.waitForFunction(() => document.querySelectorAll('#captions .final').length >= 2, null, { timeout: 150000 }).catch(() => {});
  const text = (await reader.innerText('#captions')).toLowerCase();
  check(['usted', 'información', 'informacion', 'asterisk', 'técnica', 'quiere'].some((w) => text.includes(w)), `the booth's Spanish comes back as captions: ${text.slice(0, 160)}`);
  check(await page.$eval('#level', (m) => m.value) > -60, 'the microphone level meter moves');
  await page.screenshot({ path: `${out}/booth.png` });
  await page.click('#stop');
  check(await page.textContent('#state') === 'not sending', 'stop stops');

  check(outside.length === 0, `no request leaves the server: ${outside.join(', ') || 'none'}`);
  check(errors.length === 0, `no script error: ${errors.join('; ') || 'none'}`);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
