// The attendee page: one channel's live captions. Nothing is stored on the phone (no cookie,
// no storage, the URL never changes); everything is gone when the tab closes.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  // The page's own words, in the languages of the meeting that was its reason to exist.
  const WORDS = {
    en: { live: 'live', connecting: 'connecting…', reconnecting: 'offline — reconnecting…', lagging: 'captions are late by', ended: 'ended', silent: 'no speech', off: 'Off the record: nothing is stored.', demo: 'Demo meeting (recordings).', mt: 'machine translation', jump: 'Jump to live' },
    es: { live: 'en directo', connecting: 'conectando…', reconnecting: 'sin conexión — reconectando…', lagging: 'los subtítulos llegan con retraso de', ended: 'terminado', silent: 'sin voz', off: 'Fuera de actas: no se guarda nada.', demo: 'Reunión de demostración (grabaciones).', mt: 'traducción automática', jump: 'Ir al directo' },
    ru: { live: 'в эфире', connecting: 'подключение…', reconnecting: 'нет связи — переподключение…', lagging: 'субтитры отстают на', ended: 'завершено', silent: 'тишина', off: 'Не для записи: ничего не сохраняется.', demo: 'Демонстрация (записи).', mt: 'машинный перевод', jump: 'К прямому эфиру' },
    uk: { live: 'наживо', connecting: 'підключення…', reconnecting: 'немає зв’язку — перепідключення…', lagging: 'субтитри запізнюються на', ended: 'завершено', silent: 'тиша', off: 'Не для запису: нічого не зберігається.', demo: 'Демонстрація (записи).', mt: 'машинний переклад', jump: 'До прямого ефіру' },
    fr: { live: 'en direct', connecting: 'connexion…', reconnecting: 'hors ligne — reconnexion…', lagging: 'sous-titres en retard de', ended: 'terminé', silent: 'silence', off: 'Hors compte rendu : rien n’est enregistré.', demo: 'Réunion de démonstration (enregistrements).', mt: 'traduction automatique', jump: 'Revenir au direct' },
    pt: { live: 'ao vivo', connecting: 'conectando…', reconnecting: 'sem conexão — reconectando…', lagging: 'legendas atrasadas em', ended: 'encerrado', silent: 'silêncio', off: 'Fora do registro: nada é guardado.', demo: 'Reunião de demonstração (gravações).', mt: 'tradução automática', jump: 'Ir ao vivo' },
  };
  const code = (navigator.language || 'en').slice(0, 2).toLowerCase();
  const W = WORDS[code] || WORDS.en;
  document.documentElement.lang = WORDS[code] ? code : 'en';

  let ws = null;
  let channel = null;           // the channel read
  let last = {};                // last final seq per channel: resume without gap or duplicate
  let backoff = 500;
  let channels = [];
  const captions = $('captions');
  const partial = $('partial');
  const state = (text, down) => { $('state').textContent = text; $('state').classList.toggle('down', !!down); };
  state(W.connecting);

  // Byte spans (the server's, in UTF-8) to text.
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  function render(f) {
    const p = document.createElement('span');
    p.className = 'final';
    p.dataset.seq = f.seq;
    const bytes = enc.encode(f.text);
    const g = f.glossary || {};
    const marks = [];
    for (const c of g.corrections || []) marks.push({ s: c.start, e: c.end, cls: 'corr', title: '“' + c.from + '” → “' + c.to + '”' });
    for (const x of g.flags || []) marks.push({ s: x.start, e: x.end, cls: 'flag', title: x.prefer ? '→ ' + x.prefer + (x.reason ? ' — ' + x.reason : '') : x.reason });
    marks.sort((a, b) => a.s - b.s);
    let at = 0;
    for (const m of marks) {
      if (m.s < at || m.e > bytes.length) continue;
      p.append(dec.decode(bytes.slice(at, m.s)));
      const span = document.createElement('span');
      span.className = m.cls;
      span.title = m.title || '';
      span.textContent = dec.decode(bytes.slice(m.s, m.e));
      p.append(span);
      at = m.e;
    }
    p.append(dec.decode(bytes.slice(at)));
    return p;
  }

  // Follow the newest line unless the reader scrolled up; then offer a way back.
  let following = true;
  window.addEventListener('scroll', () => {
    const bottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    following = bottom;
    $('live').hidden = bottom;
  });
  $('live').textContent = '↓ ' + W.jump;
  $('live').addEventListener('click', () => { following = true; $('live').hidden = true; window.scrollTo(0, document.body.scrollHeight); });
  const follow = () => { if (following) window.scrollTo(0, document.body.scrollHeight); };

  // Finals of one utterance (less than PAUSE apart in the audio) share a paragraph.
  const PAUSE = 1.2;
  let lastEnd = -Infinity;
  function addFinal(f) {
    if (f.channel !== channel || f.seq <= (last[f.channel] || 0)) return;
    last[f.channel] = f.seq;
    let p = captions.lastElementChild;
    if (!p || f.start - lastEnd > PAUSE) {
      p = document.createElement('p');
      captions.append(p);
    } else {
      p.append(' ');
    }
    p.append(render(f));
    lastEnd = f.end;
    partial.textContent = '';
    follow();
  }

  function send(m) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(m)); }

  function subscribe() {
    if (!channel) return;
    const m = { type: 'subscribe', channels: [channel] };
    if (last[channel]) m.since = { [channel]: last[channel] };
    send(m);
  }

  function choose(id) {
    if (id === channel) return;
    if (channel) send({ type: 'unsubscribe', channels: [channel] });
    channel = id;
    captions.textContent = '';
    partial.textContent = '';
    last = {};
    lastEnd = -Infinity;
    for (const b of $('channels').children) b.setAttribute('aria-pressed', String(b.dataset.id === id));
    const c = channels.find((x) => x.id === id);
    if (c) document.documentElement.lang = c.language === 'auto' ? document.documentElement.lang : c.language;
    subscribe();
  }

  function meeting(m) {
    $('title').textContent = m.title || 'tolk';
    document.title = (m.title || 'tolk') + ' — tolk';
    const notes = [];
    if (m.demo) notes.push(W.demo);
    if (m.off_record) notes.push(W.off);
    $('notice').textContent = notes.join(' ');
    $('notice').hidden = notes.length === 0;
    channels = m.channels || [];
    const nav = $('channels');
    nav.textContent = '';
    for (const c of channels) {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.id = c.id;
      b.lang = c.language === 'auto' ? '' : c.language;
      b.textContent = (c.label || c.id) + (c.translates ? ' (' + W.mt + ')' : '');
      b.setAttribute('aria-pressed', String(c.id === channel));
      b.addEventListener('click', () => choose(c.id));
      nav.append(b);
    }
    if (!channel) {
      const wanted = new URLSearchParams(location.search).get('channel');
      const pick = channels.find((c) => c.id === wanted) || channels.find((c) => c.floor) || channels[0];
      if (pick) choose(pick.id);
    }
  }

  function status(m) {
    if (m.channel !== channel) return;
    if (m.state === 'lagging') state(W.lagging + ' ' + Math.round(m.lag) + ' s');
    else if (m.state === 'ended') state(W.ended);
    else if (m.state === 'silent') state(W.live + ' · ' + W.silent);
    else state(W.live);
  }

  function connect() {
    ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    let opened = false;
    ws.onopen = () => { opened = true; backoff = 500; state(W.live); subscribe(); };
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (m.type === 'meeting') meeting(m);
      else if (m.type === 'final') addFinal(m);
      else if (m.type === 'snapshot') {
        if (m.channel !== channel) return;
        if (m.resync) { /* fell behind: the snapshot's finals fill in by seq */ }
        for (const f of m.finals || []) addFinal(f);
        partial.textContent = m.partial && m.partial.channel === channel ? m.partial.text : '';
      } else if (m.type === 'partial') { if (m.channel === channel) { partial.textContent = m.text; follow(); } }
      else if (m.type === 'status') status(m);
    };
    ws.onclose = () => {
      state(W.reconnecting, true);
      ws = null;
      setTimeout(connect, Math.max(opened ? 200 : backoff, offlineUntil - Date.now()));
      backoff = Math.min(backoff * 2, 8000);
    };
  }

  // Text size and colours: for this visit only (nothing is kept).
  let size = 20;
  const setSize = (d) => { size = Math.min(40, Math.max(14, size + d)); document.documentElement.style.fontSize = size + 'px'; };
  $('smaller').addEventListener('click', () => setSize(-2));
  $('larger').addEventListener('click', () => setSize(2));
  const themes = ['', 'light', 'dark', 'contrast'];
  let theme = 0;
  $('theme').addEventListener('click', () => {
    theme = (theme + 1) % themes.length;
    document.documentElement.className = themes[theme];
  });

  // For tests: drop the connection as a network would, and stay offline for `ms`.
  let offlineUntil = 0;
  window.tolkDebug = { disconnect: (ms) => { offlineUntil = Date.now() + (ms || 0); if (ws) ws.close(); } };
  connect();
})();
