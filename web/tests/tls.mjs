// The attendee page over HTTPS (tolk serve or tolk edge, --tls self-signed, at $TOLK_URL, https://…, its
// meeting PIN 2468), in a real browser that accepts the self-signed certificate as a person does after checking its
// fingerprint. Exits non-zero, saying why, unless the page loads over HTTPS, asks for the PIN, its captions
// come over WSS, and nothing is fetched from anywhere but the server.
import { check, run, url, watch } from './harness.mjs';

await run(async (browser) => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const watched = watch(page, (t) => t.includes('401 (Unauthorized)')); // the PIN probes
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(url + '/?channel=floor');
  check(await page.evaluate(() => location.protocol) === 'https:', 'the page came over HTTPS');
  // The meeting has a PIN: the page asks, says when it is wrong, then goes on.
  await page.waitForSelector('#pin', { timeout: 10000 });
  await page.fill('#pin', '1357');
  await page.click('#pin-form button');
  await page.waitForFunction(() => document.getElementById('pin-why').textContent !== '', null, { timeout: 10000 }).catch(() => {});
  check(await page.textContent('#pin-why') === 'Wrong PIN.', `a wrong PIN is said: ${await page.textContent('#pin-why')}`);
  await page.fill('#pin', '2468');
  await page.click('#pin-form button');
  await page.waitForFunction(() => document.querySelectorAll('#captions .final').length >= 1, null, { timeout: 120000 }).catch(() => {});
  const finals = await page.$$eval('#captions .final', (fs) => fs.length);
  check(finals >= 1, `captions arrive: ${finals} finals`);
  check(sockets.length > 0 && sockets.every((u) => u.startsWith('wss://')), `the captions come over WSS: ${sockets.join(', ')}`);
  watched.done();
});
