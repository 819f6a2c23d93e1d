"""The small pages the board writes itself: login, setup, setup done.
Everything put into them is escaped (a network name is anyone's choice)."""

_HTML = {'Content-Type': 'text/html; charset=UTF-8', 'Cache-Control': 'no-store'}
_HEAD = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>%s</title>
<link rel="icon" href="data:,">
<style>body{font:16px system-ui,sans-serif;background:#101418;color:#e8eef2;display:grid;
place-items:center;min-height:100vh;margin:0}form,main{display:grid;gap:.6rem;width:min(22rem,92vw)}
input,select,button{font:inherit;padding:.6rem;border-radius:.4rem;border:1px solid #456}
button{background:#2f8cff;color:#fff;border:0}[role=alert]{color:#ffb4a8}
code{font-size:1.1rem;background:#223;padding:.3rem;word-break:break-all}
#found{list-style:none;padding:0;margin:0;display:grid;gap:.3rem}
#found button{width:100%%;display:flex;justify-content:space-between;gap:.5rem;
background:#1c252e;border:1px solid #456;color:inherit;text-align:left;overflow-wrap:anywhere}
#found small{color:#93a3b0;white-space:nowrap}</style></head><body>"""

_LOGIN = """<form method="post" action="/login"><h1>ESP32-CAM</h1>%s
<label for="password">Dashboard password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form></body></html>"""

_SETUP = """<form method="post" action="/setup"><h1>Set up this camera</h1>%s
<label for="ssid">Wi-Fi network</label>
<input id="ssid" name="ssid" list="networks" autocomplete="off" %s>
<datalist id="networks">%s</datalist>
<ul id="found" aria-label="Networks found, strongest first: tap one to choose it">%s</ul>
<label for="wifi_password">Wi-Fi password</label>
<input id="wifi_password" name="wifi_password" type="password" autocomplete="off">
<label for="password">New dashboard password (8 or more characters)</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="8" required>
<label for="password2">The same password again</label>
<input id="password2" name="password2" type="password" autocomplete="new-password" minlength="8" required>
<button type="submit">Save and restart</button></form></body></html>"""

_DONE = """<main><h1>Saved</h1><p>The camera restarts%s. Then open its dashboard and log
in with your password.</p><p>API token for scripts and NVRs (shown only this once; it is
also on the USB console now):</p><p><code id="token">%s</code></p>
<p>Send it as <code>Authorization: Bearer &lt;token&gt;</code>.</p></main></body></html>"""


def escape(text):
    return (text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace('"', '&quot;').replace("'", '&#39;'))


def _alert(message):
    return '<p role="alert">%s</p>' % escape(message) if message else ''


def login(message='', status=200, headers=None):
    """The login form, with a message (wrong, locked) and extra headers."""
    out = dict(_HTML)
    out.update(headers or {})
    out['Content-Type'] = _HTML['Content-Type']
    return _HEAD % 'ESP32-CAM login' + _LOGIN % _alert(message), status, out


# a tap on a network found fills the name in and moves on to its password
_PICK = ('<li><button type="button" data-ssid="%s" onclick="ssid.value=this.dataset.ssid;'
         '(this.dataset.open?password:wifi_password).focus()"%s>%s <small>%s</small></button></li>')


def signal(rssi):
    """A network's signal in words, from its RSSI in dBm."""
    return 'strong' if rssi >= -60 else 'good' if rssi >= -70 else 'weak'


def setup(networks, wifi_known, message='', status=200):
    """networks: (SSID, RSSI dBm, open) found, strongest first; wifi_known: a
    network is configured already, so the Wi-Fi fields may stay empty."""
    options = ''.join('<option value="%s">' % escape(n) for n, _, _ in networks)
    items = ''.join(_PICK % (escape(n), ' data-open="1"' if is_open else '', escape(n),
                             '%s, %d dBm, %s' % (signal(rssi), rssi,
                                                 'open' if is_open else 'password'))
                    for n, rssi, is_open in networks) or '<li>none found</li>'
    body = _SETUP % (_alert(message), '' if wifi_known else 'required', options, items)
    return _HEAD % 'ESP32-CAM setup' + body, status, _HTML


def setup_done(ssid, token):
    where = ' and joins %s' % escape(ssid) if ssid else ''
    return _HEAD % 'ESP32-CAM saved' + _DONE % (where, escape(token)), 200, _HTML
