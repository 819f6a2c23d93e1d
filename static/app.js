'use strict';
// The dashboard: status from /events, commands over the /control WebSocket.
const $ = (id) => document.getElementById(id);
let ws = null;
let nextId = 1;
let backoff = 500;

function bytes(n) {
  if (n === null || n === undefined) return 'no card';
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + units[i];
}

function baseName(path) { return path ? path.split('/').pop() : 'none'; }

function showStatus(s) {
  $('trigger-count').textContent = s.trigger_count;
  $('snapshot-count').textContent = s.snapshot_count;
  $('last-snapshot').textContent = baseName(s.last_snapshot);
  $('sd-free').textContent = bytes(s.sd_free);
  $('camera-state').textContent = s.camera;
  $('uptime').textContent = s.uptime_s + ' s';
  $('free-heap').textContent = bytes(s.free_heap);
  $('clients').textContent = s.clients;
  if (s.settings && document.activeElement !== $('sensitivity')) {
    $('sensitivity').value = s.settings.sensitivity;
    $('sensitivity-value').textContent = s.settings.sensitivity;
  }
}

function setOnline(online) {
  $('conn').textContent = online ? 'online' : 'reconnecting…';
  $('conn').className = 'conn ' + (online ? 'online' : 'offline');
  for (const id of ['snap-btn', 'reset-btn', 'sensitivity']) $(id).disabled = !online;
}

function send(cmd) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  cmd.id = nextId++;
  ws.send(JSON.stringify(cmd));
}

function showReply(r) {
  let text;
  if (r.ok && r.saved) text = 'Saved ' + baseName(r.saved);
  else if (r.ok && r.counters) text = 'Counters reset';
  else if (r.ok && r.key) text = r.key + ' set to ' + r.value;
  else if (!r.ok) text = 'Failed: ' + (r.reason || r.error);
  if (text) $('message').textContent = text;
  if (r.ok && r.saved) $('last-snapshot').textContent = baseName(r.saved);
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
  ws = new WebSocket(proto + location.host + '/control');
  ws.addEventListener('open', () => { backoff = 500; setOnline(true); });
  ws.addEventListener('message', (e) => showReply(JSON.parse(e.data)));
  ws.addEventListener('close', () => {
    setOnline(false);
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  });
}

const events = new EventSource('/events');
events.addEventListener('status', (e) => showStatus(JSON.parse(e.data)));

$('snap-btn').addEventListener('click', () => send({cmd: 'snapshot_now'}));
$('reset-btn').addEventListener('click', () => send({cmd: 'reset'}));
$('sensitivity').addEventListener('input', (e) => {
  $('sensitivity-value').textContent = e.target.value;
});
$('sensitivity').addEventListener('change', (e) => {
  send({cmd: 'set', key: 'sensitivity', value: Number(e.target.value)});
});

// Live view: fetch the next frame when the last one has loaded.
const live = $('live');
function nextFrame() { live.src = '/snapshot.jpg?t=' + Date.now(); }
live.addEventListener('load', () => setTimeout(nextFrame, 200));
live.addEventListener('error', () => setTimeout(nextFrame, 1000));

connect();
