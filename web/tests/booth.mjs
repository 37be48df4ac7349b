// The remote booth page in a real browser (Debian's chromium, headless), its microphone a
// recording ($TOLK_BOOTH_WAV through chromium's fake capture device), against a running
// `tolk serve` at $TOLK_URL whose channel `booth` takes network audio with token
// $TOLK_BOOTH_TOKEN. Exits non-zero, saying why, if the booth fails: the microphone's audio
// reaches the channel as Opus and comes back as captions of what it says, nothing fetched
// from anywhere but the server.
import { accessible, check, out, run, url, watch } from './harness.mjs';

const wav = process.env.TOLK_BOOTH_WAV;
const token = process.env.TOLK_BOOTH_TOKEN;
if (!wav || !token) throw new Error('$TOLK_BOOTH_WAV and $TOLK_BOOTH_TOKEN must be set');

await run(async (browser) => {
  const context = await browser.newContext({ permissions: ['microphone'] });
  const page = await context.newPage();
  const watched = watch(page, (t) => t.includes('not-the-token'));

  await page.goto(url + '/booth?channel=booth');
  await accessible(page);
  // A wrong token: the page says so, and sends nothing.
  await page.fill('#token', 'not-the-token');
  await page.click('#go');
  await page.waitForFunction(() => document.getElementById('state').textContent.startsWith('disconnected'), null, { timeout: 20000 }).catch(() => {});
  check((await page.textContent('#state')).includes('wrong token'), `a wrong token is said: ${await page.textContent('#state')}`);
  await page.click('#stop');
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

  watched.done();
}, ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`]);
