// The attendee page: one channel's live captions, big and readable on a phone.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const { W } = Tolk;
  const state = (text, down) => { $('state').textContent = text; $('state').classList.toggle('down', !!down); };
  state(W.connecting);

  let channel = null; // the channel read
  let channels = [];
  const col = Tolk.column($('captions'), $('partial'), Tolk.quietMarks, false);

  // Follow the newest line unless the reader scrolled up; then offer a way back.
  let following = true;
  window.addEventListener('scroll', () => {
    const bottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    following = bottom;
    $('live').hidden = bottom;
  });
  $('live').textContent = '↓ ' + W.jump;
  $('channels').setAttribute('aria-label', W.channel);
  $('download-words').textContent = W.download;
  $('download').title = W.download;
  let downloads = false; // the meeting lets attendees download their channel's transcript

  // The download link follows the channel read; it is there only when the meeting allows it.
  function offerDownload() {
    const a = $('download');
    a.hidden = !(downloads && channel);
    if (channel) a.href = '/transcript/' + encodeURIComponent(channel) + '?format=txt' + Tolk.pinQuery('&');
  }
  $('live').addEventListener('click', () => { following = true; $('live').hidden = true; window.scrollTo(0, document.body.scrollHeight); });
  const follow = () => { if (following) window.scrollTo(0, document.body.scrollHeight); };

  function subscribe() {
    if (!channel) return;
    const m = { type: 'subscribe', channels: [channel] };
    if (col.last) m.since = { [channel]: col.last };
    conn.send(m);
  }

  function choose(id) {
    if (id === channel) return;
    if (channel) conn.send({ type: 'unsubscribe', channels: [channel] });
    channel = id;
    col.reset();
    for (const b of $('channels').children) b.setAttribute('aria-pressed', String(b.dataset.id === id));
    const c = channels.find((x) => x.id === id);
    if (c && c.language !== 'auto') $('captions').lang = c.language;
    offerDownload();
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
    downloads = !!m.downloads;
    offerDownload();
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
    else if (m.state === 'stopped') state(W.stopped);
    else if (m.state === 'incomplete') state(W.incomplete, true);
    // Reduced: the machine is busy, this channel's captions come in larger pieces.
    else if (m.state === 'silent') state(W.live + ' · ' + W.silent);
    else if (m.mode === 'reduced') state(W.live + ' · ' + W.reduced);
    else state(W.live);
  }

  function message(m) {
    if (m.type === 'meeting') meeting(m);
    else if (m.type === 'final') { if (m.channel === channel && col.final(m)) follow(); }
    else if (m.type === 'revised') { if (m.channel === channel) col.revised(m); }
    else if (m.type === 'snapshot') {
      if (m.channel !== channel) return;
      for (const f of m.finals || []) col.final(f);
      col.partial(m.partial && m.partial.channel === channel ? m.partial.text : '');
      follow();
    } else if (m.type === 'partial') { if (m.channel === channel) { col.partial(m.text); follow(); } }
    else if (m.type === 'status') status(m);
  }

  const conn = Tolk.connection(
    () => { state(W.live); subscribe(); },
    message,
    (down) => { if (down) state(W.reconnecting, true); },
  );
  Tolk.tools($('smaller'), $('larger'), $('theme'));
})();
