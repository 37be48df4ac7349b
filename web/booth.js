// The remote booth: this device's microphone to one channel of the meeting, over the ingest
// WebSocket (docs/protocol.md). Opus in 20 ms packets where the browser has WebCodecs'
// AudioEncoder (Chromium); 16-bit PCM otherwise. Reconnects with backoff; audio captured
// while disconnected is dropped (the channel's status says the booth is gone).
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  $('channel').value = params.get('channel') || '';
  let ws = null;
  let ready = false;
  let stopped = true;
  let backoff = 500;
  let format = null; // {format, rate}
  let media = null;
  let ctx = null;
  let encoder = null;
  let reader = null;
  let session = 0; // each start is a new session: an old one's reconnects stop with it
  let retry = null;
  const state = (t) => { $('state').textContent = t; };

  function connect(channel, token) {
    const mine = session;
    const sock = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ingest/' + encodeURIComponent(channel) + '?token=' + encodeURIComponent(token));
    ws = sock;
    sock.binaryType = 'arraybuffer';
    ready = false;
    let refused = '';
    sock.onopen = () => { sock.send(JSON.stringify({ type: 'hello', ...format })); };
    sock.onmessage = (e) => {
      if (mine !== session) return;
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (m.type === 'ready') { ready = true; backoff = 500; state('sending to ' + m.channel + ' (' + format.format + ')'); }
      else if (m.type === 'error') { refused = m.message; state('error: ' + m.message); }
    };
    sock.onclose = (e) => {
      console.info('booth connection closed', e.code, e.reason);
      if (mine !== session) return;
      ready = false;
      if (stopped) return;
      // The server's reason, when it gave one; else the usual suspects.
      const why = refused ? ' (' + refused + ')' : e.code === 1006 ? ' (wrong token, unknown channel, or another sender?)' : '';
      state('disconnected — reconnecting…' + why);
      retry = setTimeout(() => { if (!stopped && mine === session) connect(channel, token); }, backoff);
      backoff = Math.min(backoff * 2, 8000);
    };
  }
  const send = (bytes) => { if (ready && ws && ws.readyState === 1) ws.send(bytes); };

  function meter(samples) {
    let p = 0;
    for (const s of samples) p += s * s;
    $('level').value = Math.max(-60, 10 * Math.log10(p / Math.max(1, samples.length) + 1e-10));
  }

  async function start(channel, token) {
    media = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    const track = media.getAudioTracks()[0];
    const webcodecs = 'AudioEncoder' in window && 'MediaStreamTrackProcessor' in window &&
      (await AudioEncoder.isConfigSupported({ codec: 'opus', sampleRate: 48000, numberOfChannels: 1 })).supported;
    if (webcodecs) {
      format = { format: 'opus', rate: 48000 };
      encoder = new AudioEncoder({
        output: (chunk) => { const b = new Uint8Array(chunk.byteLength); chunk.copyTo(b); send(b); },
        error: (e) => state('encoder error: ' + e.message),
      });
      let configured = false;
      reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
      connect(channel, token);
      (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done || stopped) { if (value) value.close(); break; }
          if (!configured) {
            // The encoder takes the microphone's rate (44.1 kHz on many devices); the hello
            // keeps 48 kHz, the rate the server decodes Opus at whatever rate went in.
            encoder.configure({ codec: 'opus', sampleRate: value.sampleRate, numberOfChannels: value.numberOfChannels, bitrate: 32000, opus: { frameDuration: 20000 } });
            configured = true;
          }
          const mono = new Float32Array(value.numberOfFrames);
          value.copyTo(mono, { planeIndex: 0, format: 'f32-planar' });
          meter(mono);
          encoder.encode(value);
          value.close();
        }
      })();
    } else {
      ctx = new AudioContext();
      format = { format: 'pcm16', rate: ctx.sampleRate };
      const src = ctx.createMediaStreamSource(media);
      const node = ctx.createScriptProcessor(2048, 1, 1);
      node.onaudioprocess = (e) => {
        const x = e.inputBuffer.getChannelData(0);
        meter(x);
        const pcm = new Int16Array(x.length);
        for (let i = 0; i < x.length; i++) pcm[i] = Math.max(-1, Math.min(1, x[i])) * 32767;
        send(pcm.buffer);
      };
      src.connect(node);
      node.connect(ctx.destination);
      connect(channel, token);
    }
  }

  function stop() {
    stopped = true;
    session++;
    clearTimeout(retry);
    backoff = 500;
    if (reader) reader.cancel().catch(() => {});
    if (encoder && encoder.state !== 'closed') encoder.close();
    if (ctx) ctx.close();
    if (media) for (const t of media.getTracks()) t.stop();
    if (ws) ws.close();
    reader = encoder = ctx = media = ws = null;
    $('stop').hidden = true;
    $('go').disabled = false;
    state('not sending');
  }

  $('start').addEventListener('submit', async (e) => {
    e.preventDefault();
    session++;
    stopped = false;
    $('go').disabled = true;
    $('stop').hidden = false;
    state('starting the microphone…');
    const token = $('token').value;
    try { await start($('channel').value.trim(), token); } catch (err) { stop(); state('no microphone: ' + err.message); }
  });
  $('stop').addEventListener('click', stop);
})();
