// What every tolk page shares: its own words in the reader's language, the connection to
// the caption stream (reconnecting, and resuming without gap), and caption text with the
// glossary's spans. Nothing is stored anywhere: no cookie, no storage, the URL never changes.
'use strict';
window.Tolk = (() => {
  // The pages' own words. en, es, ru, uk, fr and pt by the developers; zh (Taiwan's
  // traditional characters), th, bn, hi, nl and sw drafted by the developers too and not yet
  // checked by a native speaker: corrections welcome (web/README.md says how to add one).
  const WORDS = {
    en: { live: 'live', connecting: 'connecting…', reconnecting: 'offline — reconnecting…', lagging: 'captions are late by', ended: 'ended', silent: 'no speech', off: 'Off the record: nothing is stored.', demo: 'Demo meeting (recordings).', mt: 'machine translation', jump: 'Jump to live', channel: 'Channel', smaller: 'smaller text', larger: 'larger text', colours: 'colours', download: 'Download the transcript', stopped: 'captions paused', pin: 'Meeting PIN', wrongPin: 'Wrong PIN.', wait: 'Too many tries: wait a minute.', incomplete: 'captions incomplete', reduced: 'captions every few seconds' },
    es: { live: 'en directo', connecting: 'conectando…', reconnecting: 'sin conexión — reconectando…', lagging: 'los subtítulos llegan con retraso de', ended: 'terminado', silent: 'sin voz', off: 'Fuera de actas: no se guarda nada.', demo: 'Reunión de demostración (grabaciones).', mt: 'traducción automática', jump: 'Ir al directo', channel: 'Canal', smaller: 'texto más pequeño', larger: 'texto más grande', colours: 'colores', download: 'Descargar la transcripción', stopped: 'subtítulos en pausa', pin: 'PIN de la reunión', wrongPin: 'PIN incorrecto.', wait: 'Demasiados intentos: espere un minuto.', incomplete: 'subtítulos incompletos', reduced: 'subtítulos cada pocos segundos' },
    ru: { live: 'в эфире', connecting: 'подключение…', reconnecting: 'нет связи — переподключение…', lagging: 'субтитры отстают на', ended: 'завершено', silent: 'тишина', off: 'Не для записи: ничего не сохраняется.', demo: 'Демонстрация (записи).', mt: 'машинный перевод', jump: 'К прямому эфиру', channel: 'Канал', smaller: 'меньше текст', larger: 'крупнее текст', colours: 'цвета', download: 'Скачать стенограмму', stopped: 'субтитры приостановлены', pin: 'PIN встречи', wrongPin: 'Неверный PIN.', wait: 'Слишком много попыток: подождите минуту.', incomplete: 'субтитры неполные', reduced: 'субтитры раз в несколько секунд' },
    uk: { live: 'наживо', connecting: 'підключення…', reconnecting: 'немає зв’язку — перепідключення…', lagging: 'субтитри запізнюються на', ended: 'завершено', silent: 'тиша', off: 'Не для запису: нічого не зберігається.', demo: 'Демонстрація (записи).', mt: 'машинний переклад', jump: 'До прямого ефіру', channel: 'Канал', smaller: 'менший текст', larger: 'більший текст', colours: 'кольори', download: 'Завантажити стенограму', stopped: 'субтитри призупинено', pin: 'PIN зустрічі', wrongPin: 'Неправильний PIN.', wait: 'Забагато спроб: зачекайте хвилину.', incomplete: 'субтитри неповні', reduced: 'субтитри раз на кілька секунд' },
    fr: { live: 'en direct', connecting: 'connexion…', reconnecting: 'hors ligne — reconnexion…', lagging: 'sous-titres en retard de', ended: 'terminé', silent: 'silence', off: 'Hors compte rendu : rien n’est enregistré.', demo: 'Réunion de démonstration (enregistrements).', mt: 'traduction automatique', jump: 'Revenir au direct', channel: 'Canal', smaller: 'texte plus petit', larger: 'texte plus grand', colours: 'couleurs', download: 'Télécharger la transcription', stopped: 'sous-titres en pause', pin: 'Code PIN de la réunion', wrongPin: 'Code PIN incorrect.', wait: 'Trop d’essais : attendez une minute.', incomplete: 'sous-titres incomplets', reduced: 'sous-titres toutes les quelques secondes' },
    pt: { live: 'ao vivo', connecting: 'conectando…', reconnecting: 'sem conexão — reconectando…', lagging: 'legendas atrasadas em', ended: 'encerrado', silent: 'silêncio', off: 'Fora do registro: nada é guardado.', demo: 'Reunião de demonstração (gravações).', mt: 'tradução automática', jump: 'Ir ao vivo', channel: 'Canal', smaller: 'texto menor', larger: 'texto maior', colours: 'cores', download: 'Baixar a transcrição', stopped: 'legendas pausadas', pin: 'PIN da reunião', wrongPin: 'PIN incorreto.', wait: 'Tentativas demais: aguarde um minuto.', incomplete: 'legendas incompletas', reduced: 'legendas a cada poucos segundos' },
    zh: { live: '直播中', connecting: '連線中…', reconnecting: '離線 — 重新連線中…', lagging: '字幕延遲', ended: '已結束', silent: '無語音', off: '不列入紀錄：不儲存任何內容。', demo: '示範會議（錄音）。', mt: '機器翻譯', jump: '跳到最新', channel: '頻道', smaller: '縮小文字', larger: '放大文字', colours: '顏色', download: '下載逐字稿', stopped: '字幕暫停', pin: '會議 PIN 碼', wrongPin: 'PIN 碼錯誤。', wait: '嘗試次數過多：請等一分鐘。', incomplete: '字幕不完整', reduced: '字幕每隔幾秒更新' },
    th: { live: 'สด', connecting: 'กำลังเชื่อมต่อ…', reconnecting: 'ออฟไลน์ — กำลังเชื่อมต่อใหม่…', lagging: 'คำบรรยายล่าช้า', ended: 'จบแล้ว', silent: 'ไม่มีเสียงพูด', off: 'ไม่บันทึก: ไม่มีการเก็บข้อมูลใด ๆ', demo: 'การประชุมสาธิต (เสียงที่บันทึกไว้)', mt: 'แปลด้วยเครื่อง', jump: 'ไปที่ล่าสุด', channel: 'ช่อง', smaller: 'ตัวอักษรเล็กลง', larger: 'ตัวอักษรใหญ่ขึ้น', colours: 'สี', download: 'ดาวน์โหลดบันทึกคำพูด', stopped: 'หยุดคำบรรยายชั่วคราว', pin: 'รหัส PIN ของการประชุม', wrongPin: 'รหัส PIN ไม่ถูกต้อง', wait: 'ลองหลายครั้งเกินไป: โปรดรอหนึ่งนาที', incomplete: 'คำบรรยายไม่ครบ', reduced: 'คำบรรยายทุกไม่กี่วินาที' },
    bn: { live: 'সরাসরি', connecting: 'সংযোগ হচ্ছে…', reconnecting: 'অফলাইন — আবার সংযোগ হচ্ছে…', lagging: 'ক্যাপশন দেরিতে আসছে:', ended: 'শেষ', silent: 'কোনো কথা নেই', off: 'রেকর্ডের বাইরে: কিছুই সংরক্ষণ করা হয় না।', demo: 'ডেমো সভা (রেকর্ডিং)।', mt: 'যন্ত্র অনুবাদ', jump: 'সরাসরিতে যান', channel: 'চ্যানেল', smaller: 'ছোট লেখা', larger: 'বড় লেখা', colours: 'রং', download: 'প্রতিলিপি ডাউনলোড করুন', stopped: 'ক্যাপশন বিরতিতে', pin: 'সভার পিন', wrongPin: 'ভুল পিন।', wait: 'অনেকবার চেষ্টা হয়েছে: এক মিনিট অপেক্ষা করুন।', incomplete: 'ক্যাপশন অসম্পূর্ণ', reduced: 'কয়েক সেকেন্ড পরপর ক্যাপশন' },
    hi: { live: 'लाइव', connecting: 'कनेक्ट हो रहा है…', reconnecting: 'ऑफ़लाइन — फिर से कनेक्ट हो रहा है…', lagging: 'कैप्शन देर से:', ended: 'समाप्त', silent: 'कोई आवाज़ नहीं', off: 'ऑफ़ द रिकॉर्ड: कुछ भी सहेजा नहीं जाता।', demo: 'डेमो बैठक (रिकॉर्डिंग)।', mt: 'मशीन अनुवाद', jump: 'लाइव पर जाएँ', channel: 'चैनल', smaller: 'छोटा पाठ', larger: 'बड़ा पाठ', colours: 'रंग', download: 'प्रतिलेख डाउनलोड करें', stopped: 'कैप्शन रुके हुए हैं', pin: 'बैठक का पिन', wrongPin: 'गलत पिन।', wait: 'बहुत अधिक प्रयास: एक मिनट रुकें।', incomplete: 'कैप्शन अधूरे हैं', reduced: 'कैप्शन हर कुछ सेकंड में' },
    nl: { live: 'live', connecting: 'verbinden…', reconnecting: 'offline — opnieuw verbinden…', lagging: 'ondertiteling loopt achter met', ended: 'afgelopen', silent: 'geen spraak', off: 'Off the record: er wordt niets bewaard.', demo: 'Demovergadering (opnames).', mt: 'machinevertaling', jump: 'Naar live', channel: 'Kanaal', smaller: 'kleinere tekst', larger: 'grotere tekst', colours: 'kleuren', download: 'Transcript downloaden', stopped: 'ondertiteling gepauzeerd', pin: 'Pincode van de vergadering', wrongPin: 'Verkeerde pincode.', wait: 'Te veel pogingen: wacht een minuut.', incomplete: 'ondertiteling onvolledig', reduced: 'ondertiteling om de paar seconden' },
    sw: { live: 'mubashara', connecting: 'inaunganisha…', reconnecting: 'nje ya mtandao — inaunganisha upya…', lagging: 'manukuu yamechelewa kwa', ended: 'imekwisha', silent: 'hakuna sauti', off: 'Si rasmi: hakuna kinachohifadhiwa.', demo: 'Mkutano wa majaribio (rekodi).', mt: 'tafsiri ya mashine', jump: 'Rudi mubashara', channel: 'Chaneli', smaller: 'maandishi madogo', larger: 'maandishi makubwa', colours: 'rangi', download: 'Pakua nakala ya maneno', stopped: 'manukuu yamesitishwa', pin: 'PIN ya mkutano', wrongPin: 'PIN si sahihi.', wait: 'Majaribio mengi mno: subiri dakika moja.', incomplete: 'manukuu hayajakamilika', reduced: 'manukuu kila baada ya sekunde chache' },
  };
  const code = (navigator.language || 'en').slice(0, 2).toLowerCase();
  const W = WORDS[code] || WORDS.en;
  document.documentElement.lang = WORDS[code] ? code : 'en';

  // The server's spans are UTF-8 byte offsets.
  const enc = new TextEncoder();
  const dec = new TextDecoder();

  // Appends `text` to `node` with digits emphasised (numbers are what interpreters miss).
  function appendText(node, text, numbers) {
    if (!numbers) { node.append(text); return; }
    for (const part of text.split(/(\d[\d.,:%]*)/)) {
      if (!part) continue;
      if (/^\d/.test(part)) {
        const b = document.createElement('b');
        b.className = 'num';
        b.textContent = part;
        node.append(b);
      } else node.append(part);
    }
  }

  // A final as a <span class="final" data-seq>, its marks ({s, e, cls, title}: byte spans,
  // the first of overlapping ones wins) wrapped in spans of their class.
  function finalSpan(f, marks, numbers) {
    const el = document.createElement('span');
    el.className = 'final';
    el.dataset.seq = f.seq;
    const bytes = enc.encode(f.text);
    let at = 0;
    for (const m of [...marks].sort((a, b) => a.s - b.s)) {
      if (m.s < at || m.e > bytes.length) continue;
      appendText(el, dec.decode(bytes.slice(at, m.s)), numbers);
      const span = document.createElement('span');
      span.className = m.cls;
      if (m.title) span.title = m.title;
      span.textContent = dec.decode(bytes.slice(m.s, m.e));
      el.append(span);
      at = m.e;
    }
    appendText(el, dec.decode(bytes.slice(at)), numbers);
    return el;
  }

  // Corrections and flags, marked quietly (never rewritten by the page).
  function quietMarks(f) {
    const g = f.glossary || {};
    const marks = [];
    for (const c of g.corrections || []) marks.push({ s: c.start, e: c.end, cls: 'corr', title: '“' + c.from + '” → “' + c.to + '”' });
    for (const x of g.flags || []) marks.push({ s: x.start, e: x.end, cls: 'flag', title: x.prefer ? '→ ' + x.prefer + (x.reason ? ' — ' + x.reason : '') : x.reason });
    return marks;
  }

  // A caption column: finals of one channel, once each and in order, those less than PAUSE
  // seconds apart in the audio in one paragraph; the partial below, tentative.
  const PAUSE = 1.2;
  function column(captions, partial, marksOf, numbers) {
    let last = 0;
    let lastEnd = -Infinity;
    return {
      get last() { return last; },
      reset() { last = 0; lastEnd = -Infinity; captions.textContent = ''; partial.textContent = ''; },
      final(f) {
        if (f.seq <= last) return false;
        last = f.seq;
        let p = captions.lastElementChild;
        if (!p || f.start - lastEnd > PAUSE) {
          p = document.createElement('p');
          captions.append(p);
        } else p.append(' ');
        p.append(finalSpan(f, marksOf(f), numbers));
        lastEnd = f.end;
        partial.textContent = '';
        return true;
      },
      partial(text) { partial.textContent = text || ''; },
      // A final shown before, its text revised (a decode of the whole passage, about half a
      // minute later): replaced where it stands, nothing else moves.
      revised(f) {
        const el = captions.querySelector('span.final[data-seq="' + Number(f.seq) + '"]');
        if (!el) return false;
        el.replaceWith(finalSpan(f, marksOf(f), numbers));
        return true;
      },
    };
  }

  // The meeting's PIN, when it has one: asked once, kept in this tab's memory only.
  let pin = '';
  const pinQuery = (sep) => (pin ? sep + 'pin=' + encodeURIComponent(pin) : '');

  // The interpreter token (`/interpreter#k=…`, from the organizer): protected names as
  // said. Taken out of the address bar at once and kept in this tab's memory only.
  let interpreter = '';
  if (location.pathname.startsWith('/interpreter') && location.hash.length > 1) {
    interpreter = new URLSearchParams(location.hash.slice(1)).get('k') || '';
    history.replaceState(null, '', location.pathname + location.search);
  }
  const wsQuery = () => {
    const q = [];
    if (pin) q.push('pin=' + encodeURIComponent(pin));
    if (interpreter) q.push('interpreter=' + encodeURIComponent(interpreter));
    return q.length ? '?' + q.join('&') : '';
  };

  function askPin(why) {
    return new Promise((resolve) => {
      let form = document.getElementById('pin-form');
      if (!form) {
        form = document.createElement('form');
        form.id = 'pin-form';
        const label = document.createElement('label');
        label.textContent = W.pin + ' ';
        const input = document.createElement('input');
        Object.assign(input, { type: 'password', id: 'pin', autocomplete: 'off', inputMode: 'numeric', required: true });
        label.append(input);
        const ok = document.createElement('button');
        ok.type = 'submit';
        ok.textContent = 'OK';
        const msg = document.createElement('p');
        msg.id = 'pin-why';
        msg.setAttribute('role', 'alert');
        form.append(label, ok, msg);
        document.body.prepend(form);
      }
      form.querySelector('#pin-why').textContent = why || '';
      form.hidden = false;
      const input = form.querySelector('#pin');
      input.value = '';
      input.focus();
      form.onsubmit = (e) => { e.preventDefault(); form.hidden = true; resolve(input.value); };
    });
  }

  // Before connecting: whether the meeting needs a PIN (and whether ours is right).
  async function gate() {
    for (;;) {
      let r;
      try { r = await fetch('/api/meeting' + pinQuery('?')); } catch { return; } // offline: the socket retries
      if (r.status !== 401 && r.status !== 429) return;
      pin = await askPin(r.status === 429 ? W.wait : pin ? W.wrongPin : '');
    }
  }

  // The caption stream: reconnects (backoff up to 8 s) and calls `opened` again, where the
  // page subscribes with `since`. `down(true|false)` says when it is offline.
  function connection(opened, message, down) {
    let ws = null;
    let backoff = 500;
    let offlineUntil = 0;
    function connect() {
      ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws' + wsQuery());
      let wasOpen = false;
      ws.onopen = () => { wasOpen = true; backoff = 500; down(false); opened(); };
      ws.onmessage = (e) => {
        let m;
        try { m = JSON.parse(e.data); } catch { return; }
        message(m);
      };
      ws.onclose = () => {
        down(true);
        ws = null;
        // Refused before it opened: perhaps the PIN (the server restarted with another).
        setTimeout(() => (wasOpen ? connect() : gate().then(connect)), Math.max(wasOpen ? 200 : backoff, offlineUntil - Date.now()));
        backoff = Math.min(backoff * 2, 8000);
      };
    }
    gate().then(connect);
    const api = {
      send(m) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(m)); },
      // For tests: drop the connection as a network would, and stay offline for `ms`.
      disconnect(ms) { offlineUntil = Date.now() + (ms || 0); if (ws) ws.close(); },
    };
    window.tolkDebug = { disconnect: api.disconnect };
    return api;
  }

  // Text size and colours, for this visit only.
  function tools(smaller, larger, theme) {
    let size = 20;
    const setSize = (d) => { size = Math.min(40, Math.max(14, size + d)); document.documentElement.style.fontSize = size + 'px'; };
    const themes = ['', 'light', 'dark', 'contrast'];
    let t = 0;
    const next = () => { t = (t + 1) % themes.length; document.documentElement.className = themes[t]; };
    // Their words for screen readers, in the reader's language.
    const say = (button, words) => { const sr = button && button.querySelector('.sr'); if (sr) sr.textContent = ' ' + words; };
    say(smaller, W.smaller);
    say(larger, W.larger);
    say(theme, W.colours);
    if (smaller) smaller.addEventListener('click', () => setSize(-2));
    if (larger) larger.addEventListener('click', () => setSize(2));
    if (theme) theme.addEventListener('click', next);
    return { setSize, next };
  }

  return { W, finalSpan, quietMarks, column, connection, tools, pinQuery };
})();
