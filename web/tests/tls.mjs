// The attendee page over HTTPS (tolk serve --tls self-signed at $TOLK_URL, https://…), in a
// real browser that accepts the self-signed certificate as a person does after checking its
// fingerprint. Exits non-zero, saying why, unless the page loads over HTTPS, its captions
// come over WSS, and nothing is fetched from anywhere but the server.
import { check, run, url, watch } from './harness.mjs';

await run(async (browser) => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const watched = watch(page);
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(url + '/?channel=floor');
  check(await page.evaluate(() => location.protocol) === 'https:', 'the page came over HTTPS');
  await page.waitForFunction(() => document.querySelectorAll('#captions .final').length >= 1, null, { timeout: 120000 }).catch(() => {});
  const finals = await page.$$eval('#captions .final', (fs) => fs.length);
  check(finals >= 1, `captions arrive: ${finals} finals`);
  check(sockets.length > 0 && sockets.every((u) => u.startsWith('wss://')), `the captions come over WSS: ${sockets.join(', ')}`);
  watched.done();
});
