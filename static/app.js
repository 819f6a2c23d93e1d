'use strict';
// The dashboard: live view from /stream (or /snapshot.jpg), status from
// /events, commands over the /control WebSocket, the gallery from /snaps.
const $ = (id) => document.getElementById(id);
const SETTING_IDS = ['sensitivity', 'framesize', 'quality', 'brightness', 'flash', 'vflip', 'hmirror'];
const CONTROL_IDS = ['snap-btn', 'reset-btn'].concat(SETTING_IDS);
const SEND_EVERY_MS = 150;      // bounded rate for sliders being dragged

// --- formatting -------------------------------------------------------------
function bytes(n) {
  if (n === null || n === undefined) return 'no card';
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + units[i];
}
function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return d + 'd ' + h + 'h';
  if (h) return h + 'h ' + m + 'm';
  return m + 'm ' + (s % 60) + 's';
}
const baseName = (path) => (path ? path.split('/').pop() : '');
const snapUrl = (name) => '/snaps/' + encodeURIComponent(name);

// --- connection state ---------------------------------------------------------
const conn = { ws: false, events: false, failures: 0 };
function showConnection() {
  const online = conn.ws && conn.events;
  const label = online ? 'online' : conn.failures >= 3 ? 'offline' : 'reconnecting…';
  const el = $('conn');
  el.textContent = label;
  el.className = 'conn ' + (online ? 'online' : conn.failures >= 3 ? 'offline' : 'reconnecting');
  for (const id of CONTROL_IDS) $(id).disabled = !conn.ws;
}

// --- status (SSE) ----------------------------------------------------------------
let lastSnapshot = null;
let uptime = null;              // status is pushed on change: tick it here
function showUptime() {
  if (uptime) $('uptime').textContent = duration(uptime.s + Math.floor((Date.now() - uptime.at) / 1000));
}
function showStatus(s) {
  $('trigger-count').textContent = s.trigger_count;
  $('snapshot-count').textContent = s.snapshot_count;
  const last = $('last-snapshot');
  last.textContent = baseName(s.last_snapshot) || 'none';
  // no snapshot yet: plain text, not a link that goes nowhere
  if (s.last_snapshot) last.href = snapUrl(baseName(s.last_snapshot));
  else last.removeAttribute('href');
  $('sd-free').textContent = bytes(s.sd_free);
  $('camera-state').textContent = s.camera;
  $('camera-state').className = s.camera === 'ok' ? '' : 'bad';
  uptime = { s: s.uptime_s, at: Date.now() };
  showUptime();
  $('free-heap').textContent = bytes(s.free_heap);
  $('clients').textContent = s.clients;
  $('clock').textContent = s.clock_set ? 'set' : 'not set';
  if (s.settings) showSettings(s.settings);
  if (s.last_snapshot !== lastSnapshot) {
    lastSnapshot = s.last_snapshot;
    loadGallery();
  }
}

function showSettings(settings) {
  for (const id of SETTING_IDS) {
    const el = $(id);
    if (!(id in settings) || el === document.activeElement) continue;
    if (el.type === 'checkbox') el.checked = !!settings[id];
    else el.value = settings[id];
    const out = $(id + '-value');
    if (out) out.textContent = settings[id];
  }
}

let events = null;
function openEvents() {
  events = new EventSource('/events');
  events.addEventListener('open', () => { conn.events = true; showConnection(); });
  events.addEventListener('status', (e) => showStatus(JSON.parse(e.data)));
  events.addEventListener('deleted', () => loadGallery());
  events.addEventListener('error', () => {
    conn.events = false;
    showConnection();
    if (events.readyState === EventSource.CLOSED) setTimeout(openEvents, 2000);
  });
}

// --- commands (WebSocket) ---------------------------------------------------------
let ws = null;
let nextId = 1;
let backoff = 500;
const pending = new Map();       // id -> what the request was, for the reply text

function send(cmd, what) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  cmd.id = nextId++;
  pending.set(cmd.id, what || cmd.cmd);
  if (pending.size > 50) pending.delete(pending.keys().next().value);
  ws.send(JSON.stringify(cmd));
  return true;
}

function say(text, bad) {
  const el = $('message');
  el.textContent = text;
  el.className = 'message' + (bad ? ' bad' : '');
}

const REASONS = {
  'no frame yet': 'the camera has no picture yet',
  'no sd card': 'there is no SD card in the board',
  'sd card full': 'the SD card is full',
  'rate limited': 'too many snapshots at once, try again in a moment',
};
function showReply(r) {
  pending.delete(r.id);
  if (r.ok && r.saved) {
    say('Saved ' + baseName(r.saved));
    lastSnapshot = null;        // the next status refreshes the gallery
    $('last-snapshot').textContent = baseName(r.saved);
    $('last-snapshot').href = snapUrl(baseName(r.saved));
  } else if (r.ok && r.counters) {
    say('Counters reset');
    $('trigger-count').textContent = '0';
    $('snapshot-count').textContent = '0';
  } else if (r.ok && r.key) {
    say(r.key + ' set to ' + r.value);
  } else if (!r.ok) {
    const why = r.reason || r.error;
    say('Failed: ' + (REASONS[why] || why), true);
  }
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
  ws = new WebSocket(proto + location.host + '/control');
  ws.addEventListener('open', () => {
    backoff = 500;
    conn.ws = true;
    conn.failures = 0;
    showConnection();
  });
  ws.addEventListener('message', (e) => showReply(JSON.parse(e.data)));
  ws.addEventListener('close', () => {
    conn.ws = false;
    conn.failures++;
    showConnection();
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 8000);
  });
}

// Sliders: at most one `set` per SEND_EVERY_MS while dragging, and always
// the final value when the slider is let go.
function wireSetting(el) {
  const key = el.dataset.key;
  const value = () => (el.type === 'checkbox' ? el.checked
    : el.tagName === 'SELECT' ? el.value : Number(el.value));
  let lastSent = 0;
  let timer = null;
  const sendNow = () => { timer = null; lastSent = Date.now(); send({ cmd: 'set', key, value: value() }, key); };
  el.addEventListener('input', () => {
    const out = $(el.id + '-value');
    if (out) out.textContent = el.value;
    if (el.type !== 'range') return;
    const wait = SEND_EVERY_MS - (Date.now() - lastSent);
    if (wait <= 0) sendNow();
    else if (!timer) timer = setTimeout(sendNow, wait);
  });
  el.addEventListener('change', () => {
    if (timer) clearTimeout(timer);
    sendNow();
  });
}

// --- live view ---------------------------------------------------------------------
// /stream is read with fetch so a stall (no frame for STALL_MS) or a board
// restart is noticed and the stream reopened; without /stream, poll stills.
const STALL_MS = 5000;
let liveUrl = null;
function showFrame(blob) {
  const url = URL.createObjectURL(blob);
  $('live').src = url;
  if (liveUrl) URL.revokeObjectURL(liveUrl);
  liveUrl = url;
  $('live-state').textContent = 'live';
  $('live-state').className = 'badge live';
  $('live').parentNode.classList.remove('stale');
}
// the last frame stays up, greyed, so nobody mistakes it for the live scene
function liveProblem(text) {
  $('live-state').textContent = text;
  $('live-state').className = 'badge';
  $('live').parentNode.classList.add('stale');
}

function indexOf(buf, pattern, from) {
  outer: for (let i = from; i <= buf.length - pattern.length; i++) {
    for (let j = 0; j < pattern.length; j++) if (buf[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

async function readStream() {
  const abort = new AbortController();
  let stall = setTimeout(() => abort.abort(), STALL_MS);
  const response = await fetch('/stream', { signal: abort.signal, cache: 'no-store' });
  if (response.status === 404) return false;
  if (!response.ok || !response.body) throw new Error('stream ' + response.status);
  const reader = response.body.getReader();
  const crlf2 = new TextEncoder().encode('\r\n\r\n');
  let buf = new Uint8Array(0);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) throw new Error('stream ended');
      const joined = new Uint8Array(buf.length + value.length);
      joined.set(buf);
      joined.set(value, buf.length);
      buf = joined;
      for (;;) {
        const headEnd = indexOf(buf, crlf2, 0);
        if (headEnd < 0) break;
        const head = new TextDecoder().decode(buf.subarray(0, headEnd));
        const match = /Content-Length: *(\d+)/i.exec(head);
        if (!match) throw new Error('bad part');
        const start = headEnd + 4, end = start + Number(match[1]);
        if (buf.length < end) break;
        showFrame(new Blob([buf.slice(start, end)], { type: 'image/jpeg' }));
        clearTimeout(stall);
        stall = setTimeout(() => abort.abort(), STALL_MS);
        buf = buf.slice(end + 2);
      }
    }
  } finally {
    clearTimeout(stall);
    abort.abort();
  }
}

async function pollStills() {
  for (;;) {
    try {
      const r = await fetch('/snapshot.jpg', { cache: 'no-store' });
      if (r.ok) showFrame(await r.blob());
      else liveProblem('no picture yet');
    } catch (e) {
      liveProblem('board unreachable');
    }
    await new Promise((done) => setTimeout(done, 500));
  }
}

async function live() {
  for (;;) {
    try {
      if ((await readStream()) === false) return pollStills();
    } catch (e) {
      liveProblem('reconnecting…');
    }
    await new Promise((done) => setTimeout(done, 1000));
  }
}

// --- gallery ------------------------------------------------------------------------
let galleryBusy = false;
async function loadGallery() {
  if (galleryBusy) return;
  galleryBusy = true;
  try {
    const r = await fetch('/snaps', { cache: 'no-store' });
    if (r.ok) showGallery(await r.json());
  } catch (e) {
    // offline: the next status after reconnecting loads it again
  } finally {
    galleryBusy = false;
  }
}

// Thumbnails load one at a time: the board has few sockets, and a dashboard
// already holds three (events, control, stream).
const PAGE = 24;
let shown = PAGE;
let thumbQueue = [];
let thumbLoading = false;
function nextThumb() {
  const img = thumbQueue.shift();
  if (!img) { thumbLoading = false; return; }
  thumbLoading = true;
  img.onload = nextThumb;
  img.onerror = () => {
    // the board may be out of sockets (503): try this one again later
    const tries = Number(img.dataset.tries || 0) + 1;
    img.dataset.tries = tries;
    if (tries < 4) setTimeout(() => { thumbQueue.push(img); if (!thumbLoading) nextThumb(); }, 1000 * tries);
    nextThumb();
  };
  img.src = img.dataset.src;
}

function showGallery(items) {
  const list = $('gallery');
  list.textContent = '';
  thumbQueue = [];
  $('gallery-empty').hidden = items.length > 0;
  $('more-btn').hidden = items.length <= shown;
  for (const item of items.slice(0, shown)) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'thumb';
    button.setAttribute('aria-label', 'Open ' + item.name);
    const img = document.createElement('img');
    img.dataset.src = snapUrl(item.name);
    img.alt = '';
    img.width = 160;
    img.height = 120;
    thumbQueue.push(img);
    const caption = document.createElement('span');
    caption.textContent = item.name.replace(/\.jpg$/, '');
    button.append(img, caption);
    button.addEventListener('click', () => openViewer(item.name));
    li.append(button);
    list.append(li);
  }
  if (!thumbLoading) nextThumb();
}

let viewing = null;
function openViewer(name) {
  viewing = name;
  $('viewer-title').textContent = name;
  $('viewer-img').src = snapUrl(name);
  $('viewer-img').alt = 'Snapshot ' + name;
  $('viewer-download').href = snapUrl(name);
  $('viewer-download').setAttribute('download', name);
  $('viewer').showModal();
}

async function deleteViewed() {
  if (!viewing || !confirm('Delete ' + viewing + '? This cannot be undone.')) return;
  const r = await fetch(snapUrl(viewing), { method: 'DELETE' });
  say(r.ok ? 'Deleted ' + viewing : 'Failed: could not delete ' + viewing, !r.ok);
  $('viewer').close();
  loadGallery();
}

// --- wiring ---------------------------------------------------------------------------
$('snap-btn').addEventListener('click', () => send({ cmd: 'snapshot_now' }, 'snapshot'));
$('reset-btn').addEventListener('click', () => send({ cmd: 'reset' }, 'reset'));
$('refresh-btn').addEventListener('click', loadGallery);
$('more-btn').addEventListener('click', () => { shown += PAGE; loadGallery(); });
$('viewer-close').addEventListener('click', () => $('viewer').close());
$('viewer-delete').addEventListener('click', deleteViewed);
for (const id of SETTING_IDS) wireSetting($(id));

setInterval(showUptime, 1000);
showConnection();
openEvents();
connect();
live();
loadGallery();
