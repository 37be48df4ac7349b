// The organizer's page in a real browser (Debian's chromium, headless), against a running
// `tolk serve` at $TOLK_URL with an archive, organizer token $TOLK_TOKEN. Exits non-zero,
// saying why, if it fails an organizer: a wrong token refused, channels with their state,
// listeners and audio level, the QR code, off the record and back, the session's topic, a
// WebVTT export that downloads and parses, nothing fetched from anywhere but the server.
import { accessible, check, out, run, url, watch } from './harness.mjs';
import { readFileSync } from 'node:fs';

const token = process.env.TOLK_TOKEN;
if (!token) throw new Error('$TOLK_TOKEN must be set');

await run(async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  // The wrong token (401) and the too-long topic (400) are refused on purpose.
  const watched = watch(page, (t) => t.includes('401') || t.includes('400 (Bad Request)'));

  await page.goto(url + '/organizer');
  await page.fill('#token', 'not-the-token');
  await page.click('#login button');
  await page.waitForFunction(() => document.getElementById('login-error').textContent !== '');
  check(await page.textContent('#login-error') === 'wrong token', 'a wrong token is refused');

  await page.fill('#token', token);
  await page.click('#login button');
  await page.waitForSelector('#channels tbody tr', { timeout: 10000 });
  const rows = await page.$$eval('#channels tbody tr', (trs) => trs.map((tr) => tr.dataset.id));
  check(rows.join(',') === 'floor,es', `the channels: ${rows}`);
  await page.waitForFunction(() => [...document.querySelectorAll('#channels meter')].some((m) => m.value > -60), null, { timeout: 20000 }).catch(() => {});
  const levels = await page.$$eval('#channels meter', (ms) => ms.map((m) => m.value));
  check(levels.some((v) => v > -60), `audio level meters move: ${levels}`);
  check(await page.$('#qr svg') !== null, 'the QR code of the attendee address');
  check((await page.textContent('#attendee-link')).startsWith(url), 'the attendee address');

  await page.click('#record');
  await page.waitForFunction(() => document.getElementById('record').getAttribute('aria-pressed') === 'true', null, { timeout: 10000 }).catch(() => {});
  check(await page.getAttribute('#record', 'aria-pressed') === 'true', 'off the record');
  await page.click('#record');
  await page.waitForFunction(() => document.getElementById('record').getAttribute('aria-pressed') === 'false', null, { timeout: 10000 }).catch(() => {});
  check(await page.getAttribute('#record', 'aria-pressed') === 'false', 'back on the record');

  // The next session's topic, set from the page; a list too long is refused, saying why,
  // and the topic before it stays.
  await page.fill('#topic-input', ' Tais Plus, Empower Foundation,tais plus ');
  await page.click('#topic-form button');
  await page.waitForFunction(() => document.getElementById('topic').textContent.includes('Empower'), null, { timeout: 10000 }).catch(() => {});
  check(await page.textContent('#topic') === 'Prompts carry: Tais Plus, Empower Foundation', `the topic is set: ${await page.textContent('#topic')}`);
  await page.fill('#topic-input', Array.from({ length: 41 }, (_, i) => 'term ' + i).join(', '));
  await page.click('#topic-form button');
  await page.waitForFunction(() => document.getElementById('topic-error').textContent !== '', null, { timeout: 10000 }).catch(() => {});
  check((await page.textContent('#topic-error')).includes('at most 40 terms'), `a long topic is refused: ${await page.textContent('#topic-error')}`);
  await page.waitForTimeout(1500);
  check(await page.textContent('#topic') === 'Prompts carry: Tais Plus, Empower Foundation', `the topic before stays: ${await page.textContent('#topic')}`);

  // Stop the Spanish channel, then start it again: the table says so.
  const esState = () => page.$eval('#channels tr[data-id="es"] td:nth-child(2)', (td) => td.textContent);
  await page.click('#channels tr[data-id="es"] button.run');
  await page.waitForFunction(() => document.querySelector('#channels tr[data-id="es"] td:nth-child(2)').textContent === 'stopped', null, { timeout: 10000 }).catch(() => {});
  check(await esState() === 'stopped', 'the es channel is stopped');
  await page.click('#channels tr[data-id="es"] button.run');
  await page.waitForFunction(() => document.querySelector('#channels tr[data-id="es"] td:nth-child(2)').textContent !== 'stopped', null, { timeout: 10000 }).catch(() => {});
  check(await esState() !== 'stopped', `the es channel runs again: ${await esState()}`);

  await page.screenshot({ path: `${out}/organizer.png`, fullPage: true });
  await accessible(page);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-export="floor.vtt"]')]);
  const path = `${out}/floor.vtt`;
  await download.saveAs(path);
  const vtt = readFileSync(path, 'utf8');
  const cues = [...vtt.matchAll(/^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$/gm)];
  const ms = (m, k) => ((+m[k] * 60 + +m[k + 1]) * 60 + +m[k + 2]) * 1000 + +m[k + 3];
  const ordered = cues.every((m, i) => ms(m, 1) <= ms(m, 5) && (i === 0 || ms(cues[i - 1], 1) <= ms(m, 1)));
  check(vtt.startsWith('WEBVTT') && cues.length > 0 && ordered, `the WebVTT export parses: ${cues.length} cues, in order`);

  watched.done();
});
