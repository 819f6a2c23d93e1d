'use strict';
// The dashboard: live view from /stream (or /snapshot.jpg), status from
// /events, commands over the /control WebSocket, the gallery from /snaps.
const $ = (id) => document.getElementById(id);
// one control per row of the settings table (firmware/settings.py), its id the
// setting's name; motion_mask has the mask editor, motion_zones the zone editor
const SETTING_IDS = ['sensitivity', 'motion_armed', 'framesize', 'quality', 'brightness', 'contrast',
  'saturation', 'gainceiling', 'flash', 'vflip', 'hmirror'];
const CONTROL_IDS = ['snap-btn', 'rec-btn', 'reset-btn'].concat(SETTING_IDS);
const SEND_EVERY_MS = 150;      // bounded rate for sliders being dragged

// --- authentication: a 401 anywhere means the session ended: log in again ----
const boardFetch = window.fetch.bind(window);
window.fetch = async (...args) => {
  const response = await boardFetch(...args);
  if (response.status === 401) location.assign('/login');
  return response;
};
fetch('/auth', { cache: 'no-store' }).then((r) => (r.ok ? r.json() : null)).then((a) => {
  if (!a) return;
  $('auth-off').hidden = a.auth !== 'off';
  $('logout').hidden = a.auth === 'off';
}).catch(() => {});

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
// The board has 10 sockets for everything (lwIP), so a visible idle dashboard
// holds two (events, stream), a hidden one none, and /control opens on demand.
const conn = { events: false, busy: false, failures: 0 };
function showConnection() {
  const online = conn.events;
  const cls = online ? 'online' : conn.busy ? 'busy' : conn.failures >= 3 ? 'offline' : 'reconnecting';
  const el = $('conn');
  el.textContent = { online: 'online', busy: 'board busy', offline: 'offline', reconnecting: 'reconnecting…' }[cls];
  el.title = cls === 'busy' ? 'The board has no free connection (too many open pages or apps); retrying' : '';
  el.className = 'conn ' + cls;
  for (const id of CONTROL_IDS) $(id).disabled = !online;
  $('mask-edit').disabled = !online;
  $('zones-edit').disabled = !online;
}

// the connection cap's 503 is a "board busy" page; the camera's is plain text
const boardBusy = (r) => r.status === 503 && /html/.test(r.headers.get('Content-Type') || '');
const busyError = (r) => Object.assign(new Error('busy'), { busy: true, wait: 1000 * (Number(r.headers.get('Retry-After')) || 2) });
// A connection that lives while the tab is visible: run(controller) until it
// fails, then again after a backoff (longer while the board says busy).
function keepOpen(run, trouble) {
  let current = null, timer = null, delay = 0;
  async function go() {
    timer = null;
    if (current || document.hidden) return;
    const c = current = new AbortController();
    c.ok = () => { delay = 0; };
    let error;
    try { await run(c); } catch (e) { error = e; }
    if (current !== c) return;          // stopped on purpose
    current = null;
    delay = Math.min(Math.max(delay * 2, 1000, (error && error.wait) || 0), 16000);
    trouble(error || new Error('ended'), delay);
    timer = setTimeout(go, delay * (0.8 + Math.random() * 0.4));
  }
  return {
    start() { if (!timer) go(); },
    stop() {
      clearTimeout(timer);
      timer = null;
      const c = current;
      current = null;
      if (c) c.abort();
    },
  };
}

// --- status (SSE, read with fetch to see a 503) ----------------------------------
let uptime = null;              // status is pushed on change: tick it here
function showUptime() {
  if (uptime) $('uptime').textContent = duration(uptime.s + Math.floor((Date.now() - uptime.at) / 1000));
}
function showStatus(s) {
  showRecording(s.recording);
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
  if ('mqtt' in s) {
    $('mqtt-state').textContent = s.mqtt;
    $('mqtt-state').className = s.mqtt.startsWith('error') ? 'bad' : '';
  }
  if (s.update) showUpdate(s.update);
  if (s.settings) showSettings(s.settings);
  if ('motion_zones' in s) zonesOn = s.motion_zones;
  if ('motion' in s) showMotionNow(s.motion);
  if ('last_motion' in s) showTrigger(s.last_motion);
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
  if (settings.motion_mask) mask = hexToBits(settings.motion_mask);
  if (settings.motion_zones) zones = settings.motion_zones;
}

function showMotionNow(moving) {
  const el = $('motion-now');
  // a count-only zone's motion is named, but it is not "motion" (no clip)
  el.textContent = zonesOn.length ? 'motion in ' + zonesOn.join(', ') : moving ? 'motion' : 'no motion';
  el.className = 'pill' + (moving ? ' moving' : '');
  drawOverlay();
}
function showTrigger(m) {
  let text = 'none yet';
  if (m && m.cause === 'pir') text = '#' + m.count + ' PIR';
  else if (m) {
    text = '#' + m.count + ' picture change';
    const b = m.box;
    if (b) text += ', ' + Number(m.area).toFixed(1) + ' % of the picture at (' + b[0] + ', ' + b[1] + ')–(' + b[2] + ', ' + b[3] + ')';
    if (m.zones && m.zones.length) text += ' in ' + m.zones.join(', ');
  }
  $('last-trigger').textContent = 'Last trigger: ' + text;
}

const HANDLERS = {
  status: showStatus,
  snapshot: (s) => addToGallery(baseName(s.path)),
  deleted: (d) => { removeFromGallery(d.names); loadClips(); },
  clip: (c) => { say('Clip saved: ' + baseName(c.path) + ' (' + c.frames + ' frames)'); loadClips(); },
  motion: (m) => { if (m.cause !== 'pir') showMotionNow(true); showTrigger(m); },
  motion_end: () => showMotionNow(false),
};
const EVENTS_STALL_MS = 15000;    // the board sends a heartbeat every 5 s
let lastEventId = null;
let eventsBefore = false;
async function readEvents(c) {
  let stall = setTimeout(() => c.abort(), EVENTS_STALL_MS);
  try {
    const r = await fetch('/events', { signal: c.signal, cache: 'no-store',
      headers: lastEventId ? { 'Last-Event-ID': lastEventId } : {} });
    if (r.status === 503) throw busyError(r);
    if (!r.ok || !r.body) throw new Error('events ' + r.status);
    c.ok();
    Object.assign(conn, { events: true, busy: false, failures: 0 });
    showConnection();
    live.start();                 // status and controls first, then the picture
    if (eventsBefore) loadGallery();    // back after a gap: events may have been missed
    eventsBefore = true;
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '', name = 'message', data = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) throw new Error('events ended');
      clearTimeout(stall);
      stall = setTimeout(() => c.abort(), EVENTS_STALL_MS);
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (!line) {
          if (data.length && HANDLERS[name]) HANDLERS[name](JSON.parse(data.join('\n')));
          name = 'message';
          data = [];
        } else if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5));
        else if (line.startsWith('id:')) lastEventId = line.slice(3).trim();
      }
    }
  } finally {
    clearTimeout(stall);
  }
}
const events = keepOpen(readEvents, (e) => {
  conn.events = false;
  conn.busy = !!e.busy;
  conn.failures++;
  showConnection();
});

// --- commands (WebSocket, opened when the user acts) -----------------------------
const WS_IDLE_MS = 30000;
let ws = null;
let nextId = 1;
let wsDelay = 500;
let idleTimer = null;
const outbox = [];               // commands waiting for the socket to open
const pending = new Map();       // id -> what the request was, for the reply text

function send(cmd, what) {
  cmd.id = nextId++;
  pending.set(cmd.id, what || cmd.cmd);
  if (pending.size > 50) pending.delete(pending.keys().next().value);
  outbox.push(JSON.stringify(cmd));
  if (outbox.length > 20) outbox.shift();
  openControl();
  flush();
  return true;
}

function flush() {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  while (outbox.length) ws.send(outbox.shift());
  stayOpen();
}
// close the control socket when nothing happened for WS_IDLE_MS
function stayOpen() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => { if (ws && !outbox.length) ws.close(); }, WS_IDLE_MS);
}

function openControl() {
  if (ws) return;
  const proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const sock = ws = new WebSocket(proto + location.host + '/control');
  sock.addEventListener('open', () => { wsDelay = 500; flush(); });
  sock.addEventListener('message', (e) => { stayOpen(); showReply(JSON.parse(e.data)); });
  sock.addEventListener('close', (e) => {
    ws = null;
    clearTimeout(idleTimer);
    if (!outbox.length) return;
    if (wsDelay > 8000) {
      outbox.length = 0;
      wsDelay = 500;
      say('Failed: the board is busy (too many connections), try again in a moment', true);
      return;
    }
    say('Board busy, retrying…', true);
    setTimeout(openControl, wsDelay);
    wsDelay *= 2;
  });
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
    addToGallery(baseName(r.saved));
    $('last-snapshot').textContent = baseName(r.saved);
    $('last-snapshot').href = snapUrl(baseName(r.saved));
  } else if (r.ok && 'recording' in r) {
    say(r.recording ? 'Recording…' : (r.stopped ? 'Recording stopped' : 'Not recording'));
  } else if (r.ok && r.counters) {
    say('Counters reset');
    $('trigger-count').textContent = '0';
    $('snapshot-count').textContent = '0';
  } else if (r.ok && r.key === 'motion_zones') {
    zones = r.value;
    say('Motion zones saved: ' + (zones.length ? zones.map((z) => z.name).join(', ') : 'none'));
    drawOverlay();
  } else if (r.ok && r.key === 'motion_mask') {
    mask = hexToBits(r.value);
    const n = mask.filter(Boolean).length;
    say('Motion mask saved: ' + (n ? n + ' of 192 cells ignored' : 'the whole picture is watched'));
  } else if (r.ok && r.key) {
    say(r.key + ' set to ' + r.value);
  } else if (!r.ok) {
    const why = r.reason || r.error;
    say('Failed: ' + (REASONS[why] || why), true);
  }
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
let frameSize = '';
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

let noStream = false;             // the board has no /stream: poll stills
async function readStream(c) {
  let stall = setTimeout(() => c.abort(), STALL_MS);
  try {
    const response = await fetch('/stream', { signal: c.signal, cache: 'no-store' });
    if (response.status === 404) { noStream = true; return pollStills(c); }
    if (response.status === 503) throw busyError(response);
    if (!response.ok || !response.body) throw new Error('stream ' + response.status);
    const reader = response.body.getReader();
    const crlf2 = new TextEncoder().encode('\r\n\r\n');
    let buf = new Uint8Array(0);
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
        c.ok();
        clearTimeout(stall);
        stall = setTimeout(() => c.abort(), STALL_MS);
        buf = buf.slice(end + 2);
      }
    }
  } finally {
    clearTimeout(stall);
  }
}

async function pollStills(c) {
  while (!c.signal.aborted) {
    const r = await fetch('/snapshot.jpg', { signal: c.signal, cache: 'no-store' });
    if (r.ok) { showFrame(await r.blob()); c.ok(); }
    else if (r.status !== 503) throw new Error('still ' + r.status);
    else if (boardBusy(r)) throw busyError(r);                   // the connection cap's
    else liveProblem('no picture yet');                          // the camera's 503
    await new Promise((done) => setTimeout(done, 500));
  }
}

const live = keepOpen((c) => (noStream ? pollStills(c) : readStream(c)),
  (e) => liveProblem(e.busy ? 'board busy, retrying…' : 'reconnecting…'));

// --- motion: overlay and mask editor -------------------------------------------------
// The mask is 16 x 12 cells over the picture, row-major, 4 cells per hex digit
// (the high bit first); a set bit is a cell the detector ignores.
const MASK_COLS = 16, MASK_ROWS = 12, MOTION_EVERY_MS = 500;
let mask = new Array(MASK_COLS * MASK_ROWS).fill(0);
let draft = null;                 // the cells on the grid: the mask's or a zone's, or null
// zones: up to 4 named grids like the mask, set bit = cell in the zone
const MAX_ZONES = 4, ZONE_COLOURS = ['#4cc9f0', '#f72585', '#b5e48c', '#ffd166'];
let zones = [];                   // the board's motion_zones
let zonesOn = [];                 // the names of those with motion now
let zoneDrafts = null;            // the zones being edited ({name, bits, sensitivity, count_only}), or null
let zoneAt = 0;                   // the one on the grid
let lastView = null;
const hexToBits = (hex) => [...hex].flatMap((ch) => { const v = parseInt(ch, 16); return [v >> 3 & 1, v >> 2 & 1, v >> 1 & 1, v & 1]; });
function bitsToHex(bits) {
  let hex = '';
  for (let i = 0; i < bits.length; i += 4) hex += (bits[i] << 3 | bits[i + 1] << 2 | bits[i + 2] << 1 | bits[i + 3]).toString(16);
  return hex;
}

// where the picture is inside the <img> (object-fit: contain keeps its shape)
function placeOverlay() {
  const img = $('live');
  const w = img.naturalWidth || 4, h = img.naturalHeight || 3;
  const scale = Math.min(img.clientWidth / w, img.clientHeight / h);
  const box = { left: img.offsetLeft + (img.clientWidth - w * scale) / 2, top: img.offsetTop + (img.clientHeight - h * scale) / 2,
    width: w * scale, height: h * scale };
  for (const el of [$('overlay'), $('mask-grid')]) {
    for (const k in box) el.style[k] = box[k] + 'px';
  }
  drawOverlay();
}

function drawOverlay() {
  const canvas = $('overlay');
  const on = $('show-motion').checked;
  canvas.hidden = !on;
  if (!on) return;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  // masked cells: shaded, the detector does not look there
  g.fillStyle = 'rgba(10, 14, 18, .55)';
  const cw = width / MASK_COLS, ch = height / MASK_ROWS;
  mask.forEach((bit, i) => bit && g.fillRect(i % MASK_COLS * cw, Math.floor(i / MASK_COLS) * ch, cw, ch));
  drawZones(g, cw, ch);
  const v = lastView;
  if (!v || !v.cols) return;
  const img = $('live');
  const scale = width / (img.naturalWidth || v.cols * 8);
  const changed = atob(v.changed);
  g.fillStyle = 'rgba(255, 77, 79, .45)';
  for (let i = 0; i < changed.length; i++) {
    if (changed.charCodeAt(i)) g.fillRect(i % v.cols * 8 * scale, Math.floor(i / v.cols) * 8 * scale, 8 * scale, 8 * scale);
  }
  if (v.region) {
    const [x0, y0, x1, y1] = v.region.box;
    const s = width / v.region.frame[0];
    g.strokeStyle = '#ffd23f';
    g.lineWidth = 2;
    g.strokeRect(x0 * s, y0 * s, (x1 - x0 + 1) * s, (y1 - y0 + 1) * s);
    g.font = '600 12px system-ui, sans-serif';
    g.fillStyle = '#ffd23f';
    g.fillText(Number(v.region.area).toFixed(1) + ' %', x0 * s + 4, Math.max(14, y0 * s - 4));
  }
}

// each zone tinted in its colour, stronger while it has motion, and named
function drawZones(g, cw, ch) {
  if (zoneDrafts) return;         // the grid shows the one being edited
  zones.forEach((zone, z) => {
    const bits = hexToBits(zone.cells);
    g.fillStyle = ZONE_COLOURS[z] + (zonesOn.includes(zone.name) ? '66' : '26');
    bits.forEach((bit, i) => bit && g.fillRect(i % MASK_COLS * cw, Math.floor(i / MASK_COLS) * ch, cw, ch));
    // named in its bottom row (the top left has the live badge)
    const row = Math.floor(bits.lastIndexOf(1) / MASK_COLS), col = bits.indexOf(1, row * MASK_COLS) % MASK_COLS;
    g.font = '600 12px system-ui, sans-serif';
    g.fillStyle = ZONE_COLOURS[z];
    g.fillText(zone.name + (zone.count_only ? ' (count only)' : ''), col * cw + 3, (row + 1) * ch - 4);
  });
}

// /motion twice a second, only while the overlay is on and the tab is seen
let motionTimer = null;
async function pollMotion() {
  motionTimer = null;
  if (!$('show-motion').checked || document.hidden) return;
  try {
    const r = await fetch('/motion', { cache: 'no-store' });
    if (r.ok) {
      lastView = await r.json();
      if (!draft) mask = hexToBits(lastView.mask);
      drawOverlay();
    }
  } catch (e) {
    // board busy or away: the next round tries again
  }
  if (!motionTimer && $('show-motion').checked) motionTimer = setTimeout(pollMotion, MOTION_EVERY_MS);
}
function motionPolling() {
  clearTimeout(motionTimer);
  motionTimer = null;
  if ($('show-motion').checked && !document.hidden) pollMotion();
}

function buildGrid() {
  const grid = $('mask-grid');
  if (grid.children.length) return;
  for (let i = 0; i < MASK_COLS * MASK_ROWS; i++) {
    const cell = document.createElement('button');
    cell.type = 'button';
    cell.tabIndex = i ? -1 : 0;
    cell.setAttribute('aria-label', 'Row ' + (Math.floor(i / MASK_COLS) + 1) + ', column ' + (i % MASK_COLS + 1));
    grid.append(cell);
  }
}
function showDraft() {
  [...$('mask-grid').children].forEach((cell, i) => cell.setAttribute('aria-pressed', draft[i] ? 'true' : 'false'));
  const n = draft.filter(Boolean).length;
  if (zoneDrafts) $('zone-count').textContent = n + ' of 192 cells in this zone';
  else $('mask-count').textContent = n ? n + ' of 192 cells ignored' : 'whole picture watched';
}
function setCell(i, bit) {
  if (draft[i] === bit) return;
  draft[i] = bit;
  showDraft();
}
// the grid over the picture, shared by the mask and the zone editor
function editGrid(on, tools, label) {
  $('motion-tools').hidden = on;
  $(tools).hidden = !on;
  $('mask-grid').hidden = !on;
  $('live').parentNode.classList.toggle('editing', on);
  $('live').parentNode.classList.toggle('zoning', on && tools === 'zone-tools');
  if (on) {
    $('mask-grid').setAttribute('aria-label', label + ' Arrow keys move, Space toggles.');
    buildGrid();
    placeOverlay();
    showDraft();
    $('mask-grid').querySelector('[tabindex="0"]').focus();
  } else {
    drawOverlay();
  }
}
function editMask(on) {
  draft = on ? mask.slice() : null;
  editGrid(on, 'mask-tools', 'Motion mask: 16 by 12 cells over the picture; a pressed cell is ignored.');
  if (!on) $('mask-edit').focus();
}
function editZones(on) {
  zoneDrafts = on ? zones.map((z) => ({ name: z.name, bits: hexToBits(z.cells), sensitivity: z.sensitivity,
    count_only: z.count_only })) : null;
  draft = null;
  if (on) pickZone(0);
  editGrid(on, 'zone-tools', 'Motion zone: 16 by 12 cells over the picture; a pressed cell is in the zone.');
  if (!on) $('zones-edit').focus();
}
function closeEditor() {
  if (zoneDrafts) editZones(false);
  else editMask(false);
}
function keepZoneFields() {
  const zone = zoneDrafts[zoneAt];
  zone.name = $('zone-name').value.trim();
  zone.sensitivity = $('zone-sens').valueAsNumber;     // NaN when empty: refused below
  zone.count_only = $('zone-count-only').checked;
}
// the zone `i` on the grid; i past the last: a new one
function pickZone(i) {
  if (draft) keepZoneFields();
  if (i >= zoneDrafts.length) {
    let n = zoneDrafts.length + 1;
    while (zoneDrafts.some((z) => z.name === 'zone ' + n)) n++;
    zoneDrafts.push({ name: 'zone ' + n, bits: new Array(MASK_COLS * MASK_ROWS).fill(0),
      sensitivity: Number($('sensitivity').value), count_only: false, fresh: true });
    i = zoneDrafts.length - 1;
  }
  zoneAt = i;
  const zone = zoneDrafts[i];
  draft = zone.bits;              // painting the grid edits this zone
  $('mask-grid').style.setProperty('--zone', ZONE_COLOURS[i] + '66');
  $('zone-name').value = zone.name;
  $('zone-sens').value = zone.sensitivity;
  $('zone-count-only').checked = zone.count_only;
  const pick = $('zone-pick');
  pick.replaceChildren(...zoneDrafts.map((z, k) => new Option(z.name || 'zone ' + (k + 1), k)));
  if (zoneDrafts.length < MAX_ZONES) pick.append(new Option('New zone', zoneDrafts.length));
  pick.value = i;
  if (!$('mask-grid').hidden) showDraft();
}
// the zones with cells, as the board takes them, or a problem to say
function zonesToSave() {
  keepZoneFields();
  const empty = zoneDrafts.find((z) => !z.fresh && !z.bits.some(Boolean));
  if (empty) return 'zone "' + empty.name + '" has no cells: paint some, or delete it';
  const kept = zoneDrafts.filter((z) => z.bits.some(Boolean));     // a new zone never painted goes
  const names = kept.map((z) => z.name.toLowerCase());
  const bad = kept.find((z, k) => !/^[A-Za-z0-9_-]([A-Za-z0-9 _-]{0,14}[A-Za-z0-9_-])?$/.test(z.name) || names.indexOf(names[k]) !== k);
  if (bad) return 'zone names: 1-16 letters, digits, spaces, - or _, each different ("' + bad.name + '")';
  if (kept.some((z) => !(z.sensitivity >= 0 && z.sensitivity <= 100 && Number.isInteger(z.sensitivity)))) return 'sensitivity: 0 to 100';
  return kept.map((z) => ({ name: z.name, cells: bitsToHex(z.bits), sensitivity: z.sensitivity, count_only: z.count_only }));
}

function wireGrid() {
  const grid = $('mask-grid');
  const cellAt = (e) => {
    const r = grid.getBoundingClientRect();
    const col = Math.floor((e.clientX - r.left) / r.width * MASK_COLS);
    const row = Math.floor((e.clientY - r.top) / r.height * MASK_ROWS);
    return col < 0 || row < 0 || col >= MASK_COLS || row >= MASK_ROWS ? -1 : row * MASK_COLS + col;
  };
  let paint = null;               // drag paints what the first cell became
  grid.addEventListener('pointerdown', (e) => {
    const i = cellAt(e);
    if (i < 0 || !draft) return;
    e.preventDefault();
    paint = draft[i] ? 0 : 1;
    setCell(i, paint);
    moveFocus(i);
    grid.setPointerCapture(e.pointerId);
  });
  grid.addEventListener('pointermove', (e) => {
    const i = paint === null ? -1 : cellAt(e);
    if (i >= 0) setCell(i, paint);
  });
  for (const type of ['pointerup', 'pointercancel']) grid.addEventListener(type, () => { paint = null; });
  // keyboard: Enter/Space click the focused cell (detail 0); a mouse click was painted above
  grid.addEventListener('click', (e) => {
    const i = [...grid.children].indexOf(e.target);
    if (i >= 0 && e.detail === 0) setCell(i, draft[i] ? 0 : 1);
  });
  grid.addEventListener('keydown', (e) => {
    const i = [...grid.children].indexOf(document.activeElement);
    if (i < 0) return;
    const row = Math.floor(i / MASK_COLS), col = i % MASK_COLS;
    const to = { ArrowLeft: col ? i - 1 : i, ArrowRight: col < MASK_COLS - 1 ? i + 1 : i,
      ArrowUp: row ? i - MASK_COLS : i, ArrowDown: row < MASK_ROWS - 1 ? i + MASK_COLS : i,
      Home: i - col, End: i - col + MASK_COLS - 1 }[e.key];
    if (to === undefined) {
      if (e.key === 'Escape') closeEditor();
      return;
    }
    e.preventDefault();
    moveFocus(to);
  });
}
function moveFocus(i) {
  const cells = $('mask-grid').children;
  for (const cell of cells) cell.tabIndex = -1;
  cells[i].tabIndex = 0;
  cells[i].focus({ preventScroll: true });
}

// --- gallery ------------------------------------------------------------------------
// /snaps once, then the `snapshot` and `deleted` events keep the list: a busy
// board (503) costs a retry of the list, never a missed snapshot.
const GALLERY_MAX = 100;          // what /snaps gives at most
let galleryItems = [];
let galleryBusy = false;
let galleryRetry = null;
async function loadGallery() {
  if (galleryBusy) return;
  galleryBusy = true;
  clearTimeout(galleryRetry);
  let wait = 0;
  try {
    const r = await fetch('/snaps', { cache: 'no-store' });
    if (r.ok) showGallery(galleryItems = await r.json());
    else wait = 2000 * (Number(r.headers.get('Retry-After')) || 2) / 2;
  } catch (e) {
    wait = 5000;                  // offline: tried again, and after reconnecting
  } finally {
    galleryBusy = false;
  }
  if (wait) galleryRetry = setTimeout(loadGallery, wait * (0.8 + Math.random() * 0.4));
}
function addToGallery(name) {
  if (!name || galleryItems.some((item) => item.name === name)) return;
  galleryItems = [{ name }].concat(galleryItems).slice(0, GALLERY_MAX);
  showGallery(galleryItems);
}
function removeFromGallery(names) {
  if (!Array.isArray(names)) { loadGallery(); return; }
  galleryItems = galleryItems.filter((item) => !names.includes(item.name));
  showGallery(galleryItems);
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
    // the board may be out of sockets (503): try this one again later; or
    // the session ended (401): a fetch sees which, and goes to the login
    if (!img.dataset.tries) loadTimeline();
    const tries = Number(img.dataset.tries || 0) + 1;
    img.dataset.tries = tries;
    if (tries < 12) setTimeout(() => { thumbQueue.push(img); if (!thumbLoading) nextThumb(); }, Math.min(1000 * tries, 15000));
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
  if (r.ok) removeFromGallery([viewing]);
}

// --- clips ----------------------------------------------------------------------------
const clipUrl = (name) => '/clips/' + encodeURIComponent(name);
let recording = null;
function showRecording(name) {
  recording = name || null;
  $('recording').textContent = recording || 'no';
  const btn = $('rec-btn');
  btn.textContent = recording ? 'Stop recording' : 'Record clip';
  btn.setAttribute('aria-pressed', recording ? 'true' : 'false');
}

let clipsBusy = false;
async function loadClips() {
  if (clipsBusy) return;
  clipsBusy = true;
  try {
    const r = await fetch('/clips', { cache: 'no-store' });
    if (r.ok) showClips(await r.json());
  } catch (e) {
    // offline: loaded again after reconnecting
  } finally {
    clipsBusy = false;
  }
}

function clipButton(text, label, run) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'small';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  b.addEventListener('click', run);
  return b;
}

function showClips(items) {
  clipItems = items;
  const list = $('clips');
  list.textContent = '';
  $('clips-empty').hidden = items.length > 0;
  for (const item of items) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'clip-name';
    name.textContent = item.name.replace(/\.avi$/, '') + ' · ' + bytes(item.bytes);
    const get = document.createElement('a');
    get.className = 'button small';
    get.href = clipUrl(item.name);
    get.setAttribute('download', item.name);
    get.textContent = 'Download';
    li.append(name, clipButton('Play', 'Play ' + item.name, () => playClip(item.name)), get,
      clipButton('Delete', 'Delete ' + item.name, () => deleteClip(item.name)));
    list.append(li);
  }
}

function playClip(name) {
  $('player-title').textContent = name;
  $('player-img').alt = 'Clip ' + name;
  $('player-img').src = clipUrl(name) + '/play';   // an MJPEG replay at the recorded rate
  $('player').showModal();
}

async function deleteClip(name) {
  if (!confirm('Delete ' + name + '? This cannot be undone.')) return;
  const r = await fetch(clipUrl(name), { method: 'DELETE' });
  say(r.ok ? 'Deleted ' + name : (r.status === 409 ? 'Failed: ' + name + ' is being downloaded, try again later'
    : 'Failed: could not delete ' + name), !r.ok);
  loadClips();
}

// --- timeline: motion triggers per 15 minutes over the last 24 hours ------------------
// /timeline holds the board's counters (no card read); a bar lists the snapshots
// and clips named in its 15 minutes (names carry the board's local time).
const TIMELINE_EVERY_MS = 120000;
let timeline = null;
let tlPicked = null;
let tlTimer = null;
let clipItems = [];
const stampMs = (s) => Date.UTC(+s.slice(0, 4), +s.slice(4, 6) - 1, +s.slice(6, 8), +s.slice(9, 11), +s.slice(11, 13), +(s.slice(13, 15) || 0));
const nameMs = (name) => { const m = /-(\d{8}-\d{6})-/.exec(name); return m ? stampMs(m[1]) : null; };
const hhmm = (ms) => new Date(ms).toISOString().slice(11, 16);
const plural = (n, one) => n + ' ' + one + (n === 1 ? '' : 's');

async function loadTimeline() {
  clearTimeout(tlTimer);
  if (!document.hidden) {
    try {
      const r = await fetch('/timeline', { cache: 'no-store' });
      if (r.ok) { timeline = await r.json(); showTimeline(); }
    } catch (e) {
      // board busy or away: the next round asks again
    }
  }
  tlTimer = setTimeout(loadTimeline, timeline ? TIMELINE_EVERY_MS : 5000);
}

function showTimeline() {
  const t = timeline, bars = $('tl-bars'), step = t.step_s * 1000, start = stampMs(t.start);
  const top = Math.max(1, ...t.counts);
  bars.textContent = '';
  t.counts.forEach((n, i) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'tl-bar' + (n ? '' : ' none') + (i === tlPicked ? ' picked' : '');
    b.style.setProperty('--h', Math.max(6, 100 * n / top) + '%');
    b.tabIndex = i === (tlPicked === null ? t.counts.length - 1 : tlPicked) ? 0 : -1;
    b.title = hhmm(start + i * step) + '–' + hhmm(start + (i + 1) * step) + ': ' + plural(n, 'trigger');
    b.setAttribute('aria-label', b.title);
    b.addEventListener('click', () => pickBar(i));
    bars.append(b);
  });
  $('tl-axis').textContent = '';
  for (let h = 0; h <= 24; h += 6) {
    const label = document.createElement('span');
    label.textContent = h === 24 ? 'now' : hhmm(start + h * 3600000);
    $('tl-axis').append(label);
  }
  const total = t.counts.reduce((a, b) => a + b, 0);
  $('tl-total').textContent = plural(total, 'trigger') + (t.clock_set ? '' : ' · clock not set');
  if (tlPicked !== null) showBar();
}

function pickBar(i) {
  if (!timeline) return;
  tlPicked = Math.max(0, Math.min(timeline.counts.length - 1, i));
  showTimeline();
  $('tl-bars').children[tlPicked].focus({ preventScroll: true });
}

// the snapshots and clips of the picked bar, from the lists the page holds
function showBar() {
  const step = timeline.step_s * 1000, from = stampMs(timeline.start) + tlPicked * step, to = from + step;
  const inBar = (item) => { const t = nameMs(item.name); return t !== null && t >= from && t < to; };
  const snaps = galleryItems.filter(inBar), clips = clipItems.filter(inBar);
  $('tl-detail').hidden = false;
  $('tl-when').textContent = hhmm(from) + '–' + hhmm(to) + ': ' + plural(timeline.counts[tlPicked], 'trigger')
    + ', ' + plural(snaps.length, 'snapshot') + ', ' + plural(clips.length, 'clip');
  const list = $('tl-snaps');
  list.textContent = '';
  for (const item of snaps) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'thumb';
    b.setAttribute('aria-label', 'Open ' + item.name);
    const img = document.createElement('img');
    img.alt = '';
    img.width = 160;
    img.height = 120;
    img.dataset.src = snapUrl(item.name);
    thumbQueue.push(img);
    const caption = document.createElement('span');
    caption.textContent = item.name.replace(/\.jpg$/, '');
    b.append(img, caption);
    b.addEventListener('click', () => openViewer(item.name));
    const li = document.createElement('li');
    li.append(b);
    list.append(li);
  }
  if (!thumbLoading) nextThumb();
  $('tl-clips').textContent = '';
  for (const item of clips) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'clip-name';
    name.textContent = item.name.replace(/\.avi$/, '');
    li.append(name, clipButton('Play', 'Play ' + item.name, () => playClip(item.name)));
    $('tl-clips').append(li);
  }
}

function wireTimeline() {
  $('tl-prev').addEventListener('click', () => pickBar(tlPicked - 1));
  $('tl-next').addEventListener('click', () => pickBar(tlPicked + 1));
  $('tl-bars').addEventListener('keydown', (e) => {
    const by = { ArrowLeft: -1, ArrowRight: 1, Home: -96, End: 96 }[e.key];
    if (by === undefined || !timeline) return;
    e.preventDefault();
    pickBar((tlPicked === null ? timeline.counts.length - 1 : tlPicked) + by);
  });
  // a trigger counts in the newest bar at once; the next load puts it right
  const onMotion = HANDLERS.motion;
  HANDLERS.motion = (m) => {
    onMotion(m);
    if (timeline) { timeline.counts[timeline.counts.length - 1]++; showTimeline(); }
  };
  for (const name of ['snapshot', 'deleted']) {
    const then = HANDLERS[name];
    HANDLERS[name] = (d) => { then(d); if (timeline && tlPicked !== null) showBar(); };
  }
}

// --- wiring ---------------------------------------------------------------------------
$('rec-btn').addEventListener('click', () => send({ cmd: recording ? 'record_stop' : 'record_start' }, 'recording'));
$('clips-refresh').addEventListener('click', loadClips);
$('player').addEventListener('close', () => { $('player-img').removeAttribute('src'); });
$('player-close').addEventListener('click', () => $('player').close());
$('snap-btn').addEventListener('click', () => send({ cmd: 'snapshot_now' }, 'snapshot'));
$('reset-btn').addEventListener('click', () => send({ cmd: 'reset' }, 'reset'));
$('refresh-btn').addEventListener('click', loadGallery);
$('more-btn').addEventListener('click', () => { shown += PAGE; showGallery(galleryItems); });
$('viewer-close').addEventListener('click', () => $('viewer').close());
$('viewer-delete').addEventListener('click', deleteViewed);
for (const id of SETTING_IDS) wireSetting($(id));

$('show-motion').addEventListener('change', () => { drawOverlay(); motionPolling(); });
$('mask-edit').addEventListener('click', () => editMask(true));
$('mask-cancel').addEventListener('click', () => editMask(false));
$('mask-clear').addEventListener('click', () => { draft.fill(0); showDraft(); });
$('mask-save').addEventListener('click', () => {
  send({ cmd: 'set', key: 'motion_mask', value: bitsToHex(draft) }, 'motion mask');
  mask = draft;
  editMask(false);
});
$('zones-edit').addEventListener('click', () => editZones(true));
$('zone-cancel').addEventListener('click', () => editZones(false));
$('zone-pick').addEventListener('change', () => pickZone(Number($('zone-pick').value)));
$('zone-name').addEventListener('change', () => { keepZoneFields(); pickZone(zoneAt); });
$('zone-delete').addEventListener('click', () => {
  draft = null;                   // nothing of the deleted one to keep
  zoneDrafts.splice(zoneAt, 1);
  pickZone(0);
});
$('zone-save').addEventListener('click', () => {
  const value = zonesToSave();
  if (typeof value === 'string') { say(value, true); return; }
  send({ cmd: 'set', key: 'motion_zones', value }, 'motion zones');
  zones = value;
  editZones(false);
});
wireGrid();
$('live').addEventListener('load', () => {
  const size = $('live').naturalWidth + 'x' + $('live').naturalHeight;
  if (size !== frameSize) { frameSize = size; placeOverlay(); }
});
new ResizeObserver(placeOverlay).observe($('live'));

// --- over-the-air update: a file made by `make ota`, POSTed to /ota -----------
let updating = false;
function showUpdate(u) {
  $('fw-version').textContent = u.version + (u.slot === 'base' ? '' : ' (slot ' + u.slot + ')');
  const last = u.busy ? 'update in progress…' : (u.last || 'none');
  $('update-last').textContent = last;
  $('update-last').className = /^(refused|failed|rolled back)/.test(last) ? 'bad' : '';
  $('update-btn').disabled = updating || u.busy || !$('update-file').files.length;
}
$('update-file').addEventListener('change', () => {
  $('update-btn').disabled = updating || !$('update-file').files.length;
});
$('update-btn').addEventListener('click', async () => {
  const file = $('update-file').files[0];
  if (!file) return;
  updating = true;
  $('update-btn').disabled = true;
  $('update-last').textContent = 'sending ' + file.name + '…';
  try {
    const r = await fetch('/ota', { method: 'POST', body: file, credentials: 'same-origin',
                                    headers: { 'Content-Type': 'application/octet-stream' } });
    const reply = await r.json().catch(() => ({ error: 'HTTP ' + r.status }));
    $('update-last').textContent = reply.ok ? 'installed ' + reply.version + '; restarting to try it'
                                            : 'refused: ' + reply.error;
    $('update-last').className = reply.ok ? '' : 'bad';
  } catch (e) {
    $('update-last').textContent = 'failed: connection lost';
    $('update-last').className = 'bad';
  }
  updating = false;
});

// A hidden tab gives its sockets back to the board; shown again, it resumes.
function visibility() {
  if (document.hidden) {
    events.stop();
    live.stop();
    if (ws && !outbox.length) ws.close();
    conn.events = false;
  } else {
    events.start();             // which starts the live view once it is in
    motionPolling();
  }
}
document.addEventListener('visibilitychange', visibility);

// A busy board may have refused the stylesheet (index.html asks again): it
// comes before the connections that stay open and would take its place.
function whenStyled(go, tries = 0) {
  const styled = (sheet) => { try { return /style\.css/.test(sheet.href) && sheet.cssRules.length > 0; } catch (e) { return false; } };
  if (tries > 60 || [...document.styleSheets].some(styled)) go();    // 20 s at most
  else setTimeout(() => whenStyled(go, tries + 1), 300);
}

setInterval(showUptime, 1000);
showConnection();
whenStyled(visibility);
loadGallery();
loadClips();
wireTimeline();
loadTimeline();
