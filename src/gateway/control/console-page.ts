/**
 * The console's page and script (served by console.ts). Plain browser code, no framework and no
 * build: the list of streams is virtualised (only the rows in view exist in the DOM), so a
 * thousand live streams cost a thousand objects and a screenful of rows. Every value from the
 * API reaches the page through textContent, never as HTML.
 */

export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>streamgate console</title>
<style>
  :root { font: 14px/1.35 system-ui, sans-serif; color: #1d232a; background: #f4f5f7; }
  body { margin: 0; }
  header { display: flex; gap: 16px; align-items: center; padding: 10px 16px; background: #1d232a; color: #fff; }
  header h1 { font-size: 16px; margin: 0; }
  header .stat { opacity: .9 } header .stat b { font-variant-numeric: tabular-nums; }
  #status { margin-left: auto; font-size: 12px; opacity: .8 }
  main { display: grid; grid-template-columns: 1fr 340px; gap: 12px; padding: 12px 16px; }
  #toolbar { display: flex; gap: 8px; margin-bottom: 8px; }
  #filter { flex: 1; padding: 5px 8px; }
  .cols, .row { display: grid; grid-template-columns: 120px 90px 120px 70px 80px 150px 1fr 150px; gap: 8px; align-items: center; padding: 0 8px; }
  .cols { font-size: 12px; color: #5b6570; padding-bottom: 4px; }
  #list { position: relative; height: calc(100vh - 150px); overflow-y: auto; background: #fff; border: 1px solid #d8dce1; }
  #spacer { position: relative; }
  .row { position: absolute; left: 0; right: 0; height: 43px; border-bottom: 1px solid #eef0f2; font-size: 13px; }
  .row .sid { font-family: ui-monospace, monospace; font-size: 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .state-streaming { color: #1a7f37; } .state-pending { color: #9a6700; }
  .meters { display: grid; gap: 3px; }
  .meter { display: grid; grid-template-columns: 16px 1fr 44px; gap: 4px; align-items: center; font-size: 11px; color: #5b6570; }
  .bar { height: 7px; background: #e6e9ec; border-radius: 3px; overflow: hidden; }
  .bar i { display: block; height: 100%; background: linear-gradient(90deg, #2da44e, #bf8700 80%, #cf222e); transition: width .2s; }
  .last { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; color: #3b444d; }
  button { font: inherit; font-size: 12px; padding: 3px 8px; cursor: pointer; }
  button.danger { color: #cf222e; }
  aside { background: #fff; border: 1px solid #d8dce1; padding: 8px 12px; height: calc(100vh - 126px); overflow-y: auto; }
  aside h2 { font-size: 13px; margin: 4px 0 8px; }
  aside p { margin: 0 0 8px; font-size: 13px; } aside p small { display: block; color: #5b6570; font-family: ui-monospace, monospace; font-size: 11px; }
  #login { display: none; position: fixed; inset: 0; background: rgba(0,0,0,.4); align-items: center; justify-content: center; }
  #login form { background: #fff; padding: 20px; display: grid; gap: 8px; min-width: 320px; }
  .empty { padding: 24px; color: #5b6570; }
</style>
</head>
<body>
<header>
  <h1>streamgate</h1>
  <span class="stat">streaming <b id="n-streaming">0</b></span>
  <span class="stat">pending <b id="n-pending">0</b></span>
  <span class="stat">conferences <b id="n-conferences">0</b></span>
  <span id="status">connecting…</span>
</header>
<main>
  <section>
    <div id="toolbar"><input id="filter" placeholder="filter by StreamSid, CallSid or ConferenceSid" autocomplete="off"></div>
    <div class="cols"><span>stream</span><span>state</span><span>conference</span><span>duration</span><span>frames / lost</span><span>level per track</span><span>last transcript</span><span></span></div>
    <div id="list"><div id="spacer"></div></div>
  </section>
  <aside><h2>Transcripts</h2><div id="transcripts"></div></aside>
</main>
<div id="login"><form id="login-form">
  <label for="token">ADMIN_TOKEN</label>
  <input id="token" type="password" autocomplete="off">
  <button type="submit">Open console</button>
</form></div>
<script src="/console.js"></script>
</body>
</html>
`;

export const CONSOLE_JS = `'use strict';
(() => {
  const ROW = 44, OVERSCAN = 6, POLL_MS = 1000, KEEP_LINES = 40;
  const $ = (id) => document.getElementById(id);
  const list = $('list'), spacer = $('spacer');
  let token = sessionStorage.getItem('streamgate-token');
  let streams = [], shown = [];
  const lastLine = new Map();
  const rows = new Map();

  function headers(extra) {
    const h = Object.assign({}, extra);
    if (token) h.authorization = 'Bearer ' + token;
    return h;
  }
  async function api(method, path) {
    const init = { method, headers: headers(method === 'GET' ? {} : { 'content-type': 'application/json' }) };
    const res = await fetch(path, init);
    if (res.status === 401) { askToken(); throw new Error('unauthorized'); }
    return res;
  }
  function askToken() {
    $('login').style.display = 'flex';
    $('token').focus();
  }
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    token = $('token').value.trim();
    sessionStorage.setItem('streamgate-token', token);
    $('login').style.display = 'none';
    poll();
    follow();
  });

  const dur = (iso) => {
    if (!iso) return '–';
    const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
    return (h ? h + ':' + String(m).padStart(2, '0') : m) + ':' + String(r).padStart(2, '0');
  };
  const short = (sid) => (sid ? sid.slice(0, 8) + '…' + sid.slice(-4) : '–');
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };

  function buildRow() {
    const r = el('div', 'row');
    r.sid = el('span', 'sid'); r.state = el('span'); r.conf = el('span', 'sid'); r.dur = el('span'); r.frames = el('span');
    r.meters = el('div', 'meters'); r.last = el('span', 'last');
    const actions = el('span');
    r.stop = el('button', 'danger', 'Stop'); r.stop.dataset.action = 'stop';
    r.end = el('button', 'danger', 'End conf.'); r.end.dataset.action = 'end';
    actions.append(r.stop, ' ', r.end);
    r.append(r.sid, r.state, r.conf, r.dur, r.frames, r.meters, r.last, actions);
    return r;
  }
  function meter(r, track, db) {
    let m = r.meters.querySelector('[data-track="' + track + '"]');
    if (!m) {
      m = el('div', 'meter'); m.dataset.track = track;
      m.append(el('span', '', track === 'inbound' ? 'in' : 'out'), el('span', 'bar'), el('span', 'db'));
      m.children[1].append(el('i'));
      r.meters.append(m);
    }
    const pct = db === null || db === undefined ? 0 : Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
    m.children[1].firstChild.style.width = pct.toFixed(0) + '%';
    m.children[2].textContent = db === null || db === undefined ? '–' : db.toFixed(0) + ' dB';
    m.dataset.db = db === null || db === undefined ? '' : String(db);
  }
  function fill(r, s) {
    r.dataset.streamSid = s.streamSid;
    r.sid.textContent = s.streamSid; r.sid.title = 'call ' + s.callSid;
    r.state.textContent = s.state; r.state.className = 'state-' + s.state;
    r.conf.textContent = s.conferenceSid ? short(s.conferenceSid) : '–'; r.conf.title = s.conferenceSid || '';
    r.dur.textContent = dur(s.startedAt);
    r.frames.textContent = s.frames + ' / ' + (s.lost || 0);
    for (const t of s.tracks) meter(r, t, s.levels ? s.levels[t] : null);
    for (const m of [...r.meters.children]) if (!s.tracks.includes(m.dataset.track)) m.remove();
    r.last.textContent = lastLine.get(s.streamSid) || '';
    r.end.hidden = !s.conferenceSid;
  }
  function render() {
    const q = $('filter').value.trim().toLowerCase();
    shown = q ? streams.filter((s) => [s.streamSid, s.callSid, s.conferenceSid || ''].some((v) => v.toLowerCase().includes(q))) : streams;
    spacer.style.height = shown.length * ROW + 'px';
    const first = Math.max(0, Math.floor(list.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(shown.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + OVERSCAN);
    const keep = new Set();
    for (let i = first; i < last; i++) {
      const s = shown[i];
      let r = rows.get(s.streamSid);
      if (!r) { r = buildRow(); rows.set(s.streamSid, r); spacer.append(r); }
      r.style.top = i * ROW + 'px';
      fill(r, s);
      keep.add(s.streamSid);
    }
    for (const [sid, r] of rows) if (!keep.has(sid)) { r.remove(); rows.delete(sid); }
    let empty = spacer.querySelector('.empty');
    if (shown.length === 0 && !empty) spacer.append(el('div', 'empty', streams.length ? 'No stream matches the filter.' : 'No live streams.'));
    if (shown.length > 0 && empty) empty.remove();
    $('n-streaming').textContent = streams.filter((s) => s.state === 'streaming').length;
    $('n-pending').textContent = streams.filter((s) => s.state === 'pending').length;
    $('n-conferences').textContent = new Set(streams.map((s) => s.conferenceSid).filter(Boolean)).size;
  }
  list.addEventListener('scroll', () => requestAnimationFrame(render));
  $('filter').addEventListener('input', render);

  list.addEventListener('click', async (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    const s = streams.find((x) => x.streamSid === b.closest('.row').dataset.streamSid);
    if (!s) return;
    b.disabled = true;
    try {
      let res;
      if (b.dataset.action === 'stop') {
        if (!confirm('Stop stream ' + s.streamSid + ' of call ' + s.callSid + '?')) return;
        res = await api('DELETE', '/v1/calls/' + encodeURIComponent(s.callSid) + '/streams/' + encodeURIComponent(s.streamSid));
      } else {
        if (!confirm('End conference ' + s.conferenceSid + ' for every participant?')) return;
        res = await api('POST', '/v1/conferences/' + encodeURIComponent(s.conferenceSid) + '/end');
      }
      const body = await res.json().catch(() => ({}));
      $('status').textContent = res.ok ? (b.dataset.action === 'stop' ? 'stopped ' + s.streamSid : 'conference ' + s.conferenceSid + ': ' + body.result) : 'failed: ' + (body.message || res.status);
    } catch (err) {
      $('status').textContent = 'failed: ' + err.message;
    } finally {
      b.disabled = false;
    }
  });

  let timer = null;
  async function poll() {
    clearTimeout(timer);
    try {
      const res = await api('GET', '/v1/streams');
      if (!res.ok) throw new Error('HTTP ' + res.status);
      streams = (await res.json()).streams;
      $('status').textContent = 'updated ' + new Date().toLocaleTimeString();
      render();
    } catch (err) {
      if (err.message === 'unauthorized') return;
      $('status').textContent = 'offline: ' + err.message;
    }
    timer = setTimeout(poll, POLL_MS);
  }

  // EventSource cannot send a bearer token, so the SSE feed is read with fetch.
  let following = false;
  async function follow() {
    if (following) return;
    following = true;
    try {
      const res = await api('GET', '/v1/transcripts');
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\\n\\n')) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          const data = block.split('\\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\\n');
          if (data) transcript(JSON.parse(data));
        }
      }
    } catch (err) {
      if (err.message === 'unauthorized') { following = false; return; }
    }
    following = false;
    setTimeout(follow, 2000);
  }
  function transcript(t) {
    lastLine.set(t.streamSid, t.text);
    const p = el('p', '', t.text);
    p.dataset.streamSid = t.streamSid;
    p.prepend(el('small', '', (t.track || '') + ' ' + t.callSid));
    const box = $('transcripts');
    box.prepend(p);
    while (box.children.length > KEEP_LINES) box.lastChild.remove();
    render();
  }

  setInterval(render, 1000);
  poll();
  follow();
})();
`;
