// The attendee page in a real browser (Debian's chromium, headless), against a running
// `tolk serve` at $TOLK_URL transcribing a real recording. Exits non-zero, saying why, if
// the page fails a user: finals shown in order, a dropped connection resumed with no gap
// and no duplicate, nothing fetched from anywhere but the server, nothing kept on the
// phone. Saves a phone-sized screenshot to $TOLK_ARTIFACTS (default target/browser).
import { accessible, check, out, run, url, watch } from './harness.mjs';

await run(async (browser) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'es-AR' });
  const page = await context.newPage();
  const watched = watch(page);
  // The floor's revisions as the server sends them (the record revised, about half a
  // minute after the finals): the page must show each in its final's place.
  let revised = null;
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    try {
      const m = JSON.parse(f.payload);
      if (m.type === 'revised' && m.channel === 'floor') revised = m;
    } catch { /* not JSON: not ours to judge here */ }
  }));

  await page.goto(url + '/?channel=floor');
  const finals = () => page.$$eval('#captions .final', (ps) => ps.map((p) => Number(p.dataset.seq)));
  await page.waitForFunction(() => document.querySelectorAll('#captions .final').length >= 2, null, { timeout: 120000 });
  const before = await finals();
  check(before.every((s, i) => i === 0 || s === before[i - 1] + 1), `finals in order before the drop: ${before}`);
  const said = await page.textContent('#state');
  // Any state the meeting may be in (on a slow machine it may be "incomplete"), in Spanish.
  check(/^(en directo|los subtítulos|subtítulos|terminado|conectando)/.test(said) && await page.getAttribute('html', 'lang') === 'es', `the state is shown in the phone's language (es): ${said}`);

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
  // $TOLK_PROTECTED: a word the meeting protects (the floor says it in its first sentence).
  const protectedWord = process.env.TOLK_PROTECTED;
  if (protectedWord) {
    check(!text.toLowerCase().includes(protectedWord.toLowerCase()) && text.includes('[name withheld]'), `the protected name is withheld from attendees: ${text.slice(0, 60)}…`);
  }

  // The meeting lets attendees download their channel's transcript: the file holds what
  // the page showed.
  const link = page.locator('#download');
  check(await link.isVisible(), 'the transcript download is offered (the meeting allows it)');
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const file = await download.path();
  const saved = file ? (await import('node:fs')).readFileSync(file, 'utf8') : '';
  const shown = (await page.innerText('#captions .final')).trim().split(/\s+/).slice(0, 4).join(' ');
  check(saved.includes(shown), `the downloaded transcript (${download.suggestedFilename()}) holds the first final shown: “${shown}”`);

  // The record revised: the final it names shows the revised text, where it stood. The
  // reviser takes only idle cores (SCHED_IDLE), and the server's two live channels leave
  // few on a loaded 2-core machine: up to four minutes (two were too few once in CI).
  for (let i = 0; i < 240 && !revised; i++) await page.waitForTimeout(1000);
  check(revised, 'a revision of the floor came within four minutes');
  if (revised) {
    const rev = revised;
    await page.waitForTimeout(300);
    const inPlace = await page.$eval(`#captions .final[data-seq="${rev.seq}"]`, (e) => e.textContent).catch(() => null);
    check(inPlace !== null && inPlace.trim() === rev.text.trim(), `final ${rev.seq} shows its revision: “${inPlace}” / “${rev.text}”`);
  }

  await page.screenshot({ path: `${out}/attendee-phone.png` });
  await accessible(page);
  check((await context.cookies()).length === 0, 'no cookie');
  check(await page.evaluate(() => localStorage.length + sessionStorage.length) === 0, 'nothing in local or session storage');
  watched.done();

  // A Thai phone: the page speaks Thai (its words, and the screen reader's labels).
  const thai = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, locale: 'th-TH' });
  const th = await thai.newPage();
  const watchedTh = watch(th);
  await th.goto(url + '/?channel=es');
  await th.waitForFunction(() => document.querySelectorAll('#captions .final').length >= 1, null, { timeout: 120000 });
  const thState = await th.textContent('#state');
  check(await th.getAttribute('html', 'lang') === 'th' && /^(สด|คำบรรยาย|จบแล้ว|หยุดคำบรรยาย|กำลังเชื่อมต่อ)/.test(thState), `the state in Thai: ${thState}`);
  check(await th.getAttribute('#channels', 'aria-label') === 'ช่อง' && (await th.textContent('#larger')).includes('ตัวอักษรใหญ่ขึ้น'), 'the labels in Thai');
  watchedTh.done();
});
