// The organizer's page: the meeting at a glance (channels, lag, audio levels, listeners),
// off the record and back, the session's topic, the attendee address and its QR code, the
// glossary in use, and the archive's exports. The token stays in this tab's memory only.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  let token = null;
  let meeting = null;
  let timer = null;
  const auth = () => ({ headers: { Authorization: 'Bearer ' + token } });
  const el = (tag, text) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; };

  async function refresh() {
    let r;
    try { r = await fetch('/api/organizer', auth()); } catch { $('health').textContent = 'server unreachable'; $('health').className = 'down'; return; }
    if (r.status === 401) { stop('wrong token'); return; }
    if (r.status === 429) { stop('too many wrong tokens from this address: wait a minute'); return; }
    const s = await r.json();
    if (!meeting) first(s);
    meeting = s.meeting;
    $('title').textContent = s.meeting.title + ' — organizer';
    // Listeners served by edges (`tolk edge` on other machines), as they last said.
    const edges = s.edges || [];
    const onEdges = edges.reduce((n, e) => n + e.connections, 0);
    $('health').textContent = 'engine ' + s.engine + ' · ' + s.connections + ' connections' +
      (edges.length ? ' · ' + onEdges + ' more on ' + edges.length + (edges.length === 1 ? ' edge (' : ' edges (') + edges.map((e) => e.name).join(', ') + ')' : '');
    $('health').className = s.engine.startsWith('running') ? 'ok' : 'down';
    const off = !!s.meeting.off_record;
    $('record').setAttribute('aria-pressed', String(off));
    $('record').textContent = off ? 'Off the record — go back on' : 'Go off the record';
    $('archive').textContent = 'Archive: ' + s.archive;
    const alarm = [s.recognition_alarm, s.archive_alarm].filter(Boolean).join(' ');
    $('alarm').hidden = !alarm;
    $('alarm').textContent = alarm;
    $('glossary').textContent = s.glossary || 'none';
    $('capacity').textContent = s.capacity || '';
    showTopic(s);
    const body = $('channels').tBodies[0];
    body.textContent = '';
    for (const [i, c] of s.channels.entries()) {
      const tr = el('tr');
      tr.dataset.id = c.id;
      tr.append(el('td', c.label + ' (' + c.language + ')'), el('td', c.state + (c.mode === 'reduced' && c.state !== 'stopped' && c.state !== 'ended' ? ' · reduced: decoded every ' + c.step.toFixed(0) + ' s' : '')), el('td', c.lag.toFixed(1) + ' s'));
      const td = el('td');
      const m = el('meter');
      m.min = -60; m.max = 0; m.low = -45; m.high = -6; m.optimum = -20;
      m.value = Math.max(-60, c.level_db);
      m.title = c.level_db.toFixed(0) + ' dBFS';
      td.append(m);
      const listeners = c.listeners + edges.reduce((n, e) => n + (e.listeners[i] || 0), 0);
      tr.append(td, el('td', String(listeners)), el('td', c.source));
      tr.children[4].className = 'listeners';
      // Stop a channel (its audio is no longer transcribed) or start it again.
      const stopped = c.state === 'stopped';
      const run = el('button', stopped ? 'Start' : 'Stop');
      run.type = 'button';
      run.className = 'run';
      run.setAttribute('aria-label', (stopped ? 'Start ' : 'Stop ') + c.label);
      run.addEventListener('click', async () => {
        const r = await fetch('/api/channel/' + encodeURIComponent(c.id) + '?stopped=' + !stopped, { method: 'POST', ...auth() });
        if (!r.ok) alert(await r.text());
        setTimeout(refresh, 300);
      });
      const cell = el('td');
      cell.append(run);
      tr.append(cell);
      body.append(tr);
    }
    // Nothing lost silently: audio dropped and speech given up untranscribed, per channel.
    const losses = [];
    for (const c of s.channels) {
      const parts = [];
      if (c.audio_lost_secs > 0) parts.push(c.audio_lost_secs.toFixed(1) + ' s of audio dropped');
      if (c.untranscribed_secs > 0) parts.push(c.untranscribed_secs.toFixed(1) + ' s of speech not transcribed');
      if (parts.length) losses.push(c.label + ': ' + parts.join(', '));
    }
    // The record's revision: how many passages of each channel were decoded again, and how
    // many the machine had no idle core for (their captions stay as first sent).
    const revised = s.channels
      .filter((c) => c.revisions || c.revisions_given_up)
      .map((c) => c.label + ' ' + c.revisions + (c.revisions_given_up ? ' (' + c.revisions_given_up + ' not revised: machine busy)' : ''));
    $('revised').textContent = revised.length ? 'Passages revised for the record — ' + revised.join('; ') : '';
    $('summary').textContent = losses.length ? 'Captions incomplete — ' + losses.join('; ') : '';
  }

  // The topic as the server keeps it; the field is filled once, never while being edited.
  function showTopic(s) {
    const topic = s.topic || [];
    $('topic').textContent = topic.length ? 'Prompts carry: ' + topic.join(', ') : 'No topic.';
  }

  $('topic-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const topic = $('topic-input').value.split(',').map((t) => t.trim()).filter(Boolean);
    let r;
    try {
      r = await fetch('/api/topic', {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
        body: JSON.stringify({ topic }),
      });
    } catch (err) {
      $('topic-error').textContent = 'Not set: the server cannot be reached.';
      return;
    }
    if (!r.ok) { $('topic-error').textContent = 'Not set: ' + (await r.text()).trim(); return; }
    const a = await r.json();
    $('topic-error').textContent = '';
    $('topic-input').value = a.topic.join(', ');
    showTopic(a);
  });

  async function first(s) {
    $('topic-input').value = (s.topic || []).join(', ');
    const url = location.origin + '/';
    $('attendee-link').href = url;
    $('attendee-link').textContent = url;
    // With protected names, the interpreters' link carries their key (in the fragment,
    // which no request sends): copy the link to them, do not show it on a screen.
    $('interp-link').href = url + 'interpreter' + (s.interpreter_key ? '#k=' + encodeURIComponent(s.interpreter_key) : '');
    $('interp-link').textContent = url + 'interpreter' + (s.interpreter_key ? ' (the link holds the interpreters’ key: copy it to them)' : '');
    const r = await fetch('/api/qr.svg?text=' + encodeURIComponent(url), auth());
    if (r.ok) {
      const svg = new DOMParser().parseFromString(await r.text(), 'image/svg+xml').documentElement;
      $('qr').textContent = '';
      $('qr').append(document.importNode(svg, true));
    }
    const box = $('exports');
    box.textContent = '';
    const floor = s.channels[0] && s.channels[0].id;
    for (const c of s.channels) {
      for (const f of ['vtt', 'srt', 'txt', 'md', 'json']) box.append(exportButton(c.id, '?format=' + f, c.id + '.' + f, c.label + ' ' + f.toUpperCase()));
      if (c.id !== floor) box.append(exportButton(floor, '?with=' + encodeURIComponent(c.id), floor + '-' + c.id + '.md', floor + ' ⇄ ' + c.label));
    }
  }

  // Exports are fetched with the token (never put in a URL), then saved from memory.
  function exportButton(channel, query, name, label) {
    const b = el('button', label);
    b.type = 'button';
    b.dataset.export = name;
    b.addEventListener('click', async () => {
      const r = await fetch('/api/export/' + encodeURIComponent(channel) + query, auth());
      if (!r.ok) { alert(await r.text()); return; }
      const a = document.createElement('a');
      a.href = URL.createObjectURL(await r.blob());
      a.download = name;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    });
    return b;
  }

  $('record').addEventListener('click', async () => {
    const off = !(meeting && meeting.off_record);
    const r = await fetch('/api/off-record?off=' + off, { method: 'POST', ...auth() });
    if (!r.ok) alert(await r.text());
    setTimeout(refresh, 300);
  });

  function stop(why) {
    clearInterval(timer);
    token = null;
    meeting = null;
    $('login-error').textContent = why;
    $('login').hidden = false;
    $('tools').hidden = true;
    $('desk-org').hidden = true;
  }

  $('login').addEventListener('submit', async (e) => {
    e.preventDefault();
    token = $('token').value;
    $('token').value = '';
    $('login-error').textContent = '';
    meeting = null;
    await refresh();
    if (!token) return;
    $('login').hidden = true;
    $('tools').hidden = false;
    $('desk-org').hidden = false;
    timer = setInterval(refresh, 1000);
  });
})();
