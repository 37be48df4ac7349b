// The interpreter's desk: the source channel (the floor, usually) with glossary terms
// highlighted and, beside them, term cards in the booth's language — sourced or a
// proposal, so an unverified translation never looks authoritative; numbers and names in
// bold; flagged terms with what to say instead; how late and how healthy recognition is;
// and, split beside, their own channel's captions.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const { W } = Tolk;
  const params = new URLSearchParams(location.search);
  let channels = [];
  let source = null;
  let own = null;
  let booth = params.get('booth') || '';
  let lastOwn = '';
  const CARDS = 8;

  const health = (text, cls) => { $('health').textContent = text; $('health').className = cls; };
  health(W.connecting, '');

  // Term hits (highlighted, organisations as names), corrections and flags.
  function marksOf(f) {
    const g = f.glossary || {};
    const marks = Tolk.quietMarks(f);
    for (const h of g.hits || []) marks.push({ s: h.start, e: h.end, cls: h.category === 'org' ? 'hit name' : 'hit' });
    return marks;
  }
  const src = Tolk.column($('captions'), $('partial'), marksOf, true);
  const mine = Tolk.column($('own-captions'), $('own-partial'), Tolk.quietMarks, true);

  // Newest card on top; a term said again moves up; at most CARDS.
  function card(key, build) {
    const old = $('cards').querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (old) old.remove();
    const c = build();
    c.dataset.key = key;
    $('cards').prepend(c);
    while ($('cards').children.length > CARDS) $('cards').lastElementChild.remove();
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function cards(f) {
    const g = f.glossary || {};
    for (const h of g.hits || []) {
      const eq = (h.equivalents || []).find((x) => x.lang === booth || x.lang.split('-')[0] === booth);
      card(h.concept, () => {
        const c = el('div', 'card ' + (eq ? eq.status : 'none'));
        c.append(el('div', 'term', h.text));
        if (eq) {
          const e = el('div', 'eq', eq.text);
          e.lang = eq.lang;
          c.append(e);
          c.append(el('div', 'badge', eq.status === 'sourced' ? 'sourced' + (eq.source ? ' · ' + eq.source : '') : 'proposal — unverified'));
        } else {
          c.append(el('div', 'badge', booth ? 'no ' + booth + ' term' : 'choose a booth language'));
        }
        return c;
      });
    }
    for (const x of g.flags || []) {
      card('flag:' + x.concept, () => {
        const c = el('div', 'card flagged');
        c.append(el('div', 'term', '⚑ ' + x.text));
        if (x.prefer) c.append(el('div', 'eq', '→ ' + x.prefer));
        if (x.reason) c.append(el('div', 'badge', x.reason));
        return c;
      });
    }
  }

  let following = true;
  window.addEventListener('scroll', () => {
    following = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  });
  const follow = () => { if (following) window.scrollTo(0, document.body.scrollHeight); };

  function subscribe(id, col) {
    if (!id) return;
    const m = { type: 'subscribe', channels: [id] };
    if (col.last) m.since = { [id]: col.last };
    conn.send(m);
  }
  function select(sel, items, value) {
    sel.textContent = '';
    for (const [v, label] of items) {
      const o = el('option', '', label);
      o.value = v;
      o.selected = v === value;
      sel.append(o);
    }
  }

  function meeting(m) {
    $('title').textContent = m.title || 'tolk';
    channels = m.channels || [];
    const label = (c) => (c.label || c.id) + (c.translates ? ' (' + W.mt + ')' : '');
    if (!source) {
      const wanted = params.get('source');
      source = (channels.find((c) => c.id === wanted) || channels.find((c) => c.floor) || channels[0] || {}).id || null;
      subscribe(source, src);
    }
    if (own === null) {
      own = channels.some((c) => c.id === params.get('own')) ? params.get('own') : '';
      if (own) { subscribe(own, mine); $('mine').hidden = false; $('desk').classList.add('split'); }
    }
    const langs = [...new Set(channels.map((c) => c.language).filter((l) => l !== 'auto'))];
    if (!booth) booth = (channels.find((c) => c.id === own) || {}).language || langs.find((l) => l !== (channels.find((c) => c.id === source) || {}).language) || '';
    select($('source'), channels.map((c) => [c.id, label(c)]), source);
    // Language names in their own script, from the browser (no list to download).
    const autonym = (l) => { try { return new Intl.DisplayNames([l], { type: 'language' }).of(l) || l; } catch { return l; } };
    select($('booth'), langs.map((l) => [l, autonym(l)]), booth);
    select($('own'), [['', '—'], ...channels.map((c) => [c.id, label(c)])], own);
  }

  $('source').addEventListener('change', (e) => {
    if (source) conn.send({ type: 'unsubscribe', channels: [source] });
    source = e.target.value;
    src.reset();
    subscribe(source, src);
  });
  $('booth').addEventListener('change', (e) => { booth = e.target.value; $('cards').textContent = ''; });
  $('own').addEventListener('change', (e) => {
    if (own) conn.send({ type: 'unsubscribe', channels: [own] });
    own = e.target.value;
    mine.reset();
    $('mine').hidden = !own;
    $('desk').classList.toggle('split', !!own);
    subscribe(own, mine);
  });

  function message(m) {
    const colOf = (ch) => (ch === source ? src : ch === own ? mine : null);
    if (m.type === 'meeting') meeting(m);
    else if (m.type === 'final') {
      const col = colOf(m.channel);
      if (col && col.final(m)) { if (col === src) cards(m); follow(); }
    } else if (m.type === 'revised') {
      const col = colOf(m.channel);
      if (col) col.revised(m);
    } else if (m.type === 'snapshot') {
      const col = colOf(m.channel);
      if (!col) return;
      for (const f of m.finals || []) if (col.final(f) && col === src) cards(f);
      col.partial(m.partial ? m.partial.text : '');
    } else if (m.type === 'partial') {
      const col = colOf(m.channel);
      if (col) col.partial(m.text);
    } else if (m.type === 'status' && m.channel === source) {
      // How late the machine is, and whether it is working: people over-trust it.
      if (m.state === 'lagging') health(W.lagging + ' ' + m.lag.toFixed(1) + ' s', 'late');
      else if (m.state === 'ended') health(W.ended + (m.source ? ': ' + m.source : ''), 'down');
      else if (m.state === 'stopped') health(W.stopped, 'down');
      else if (m.state === 'incomplete') health(W.incomplete + (m.source ? ': ' + m.source : ''), 'down');
      else health(W.live + (m.lag ? ' · ' + m.lag.toFixed(1) + ' s' : '') + (m.state === 'silent' ? ' · ' + W.silent : '') + (m.mode === 'reduced' ? ' · ' + W.reduced : ''), m.mode === 'reduced' ? 'late' : 'ok');
    }
  }

  const conn = Tolk.connection(
    () => { health(W.live, 'ok'); subscribe(source, src); subscribe(own, mine); },
    message,
    (down) => { if (down) health(W.reconnecting, 'down'); },
  );
  const t = Tolk.tools($('smaller'), $('larger'), $('theme'));

  // Keyboard: the interpreter's hands stay on the keys.
  document.addEventListener('keydown', (e) => {
    if (e.target.tagName === 'SELECT' || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === '+' || e.key === '=') t.setSize(2);
    else if (e.key === '-') t.setSize(-2);
    else if (e.key === 'c') $('cards').textContent = '';
    else if (e.key === 'j') { following = true; follow(); }
    else if (e.key === 's') {
      // Split view off, or back on with the channel it had (else the first that is not
      // the source).
      const sel = $('own');
      if (sel.value) lastOwn = sel.value;
      sel.value = sel.value ? '' : lastOwn || (channels.find((c) => c.id !== source) || {}).id || '';
      sel.dispatchEvent(new Event('change'));
    } else return;
    e.preventDefault();
  });
})();
