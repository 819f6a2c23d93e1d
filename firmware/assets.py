"""The dashboard's files from the static folder, gzip-aware."""
import os
from microdot import send_file
from firmware.ota import app_root

_STATIC = app_root() + 'static'      # the running slot's (firmware/ota.py)
_TYPES = {'html': 'text/html; charset=UTF-8', 'js': 'text/javascript',
          'css': 'text/css', 'svg': 'image/svg+xml', 'ico': 'image/x-icon',
          'json': 'application/json', 'png': 'image/png'}


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _static_name_ok(name):
    # one flat folder: letters, digits, '-', '_', and a dot that is not leading
    if not (1 <= len(name) <= 64) or name[0] == '.' or '..' in name:
        return False
    for c in name:
        if not (c.isalpha() or c.isdigit() or c in '-_.'):
            return False
    return True


def serve_static(request, name):
    """A file of the static folder, the .gz copy when the client takes it."""
    if not _static_name_ok(name):
        return 'Not found', 404
    path = _STATIC + '/' + name
    ctype = _TYPES.get(name.rsplit('.', 1)[-1], 'application/octet-stream')
    headers = {'Cache-Control': 'no-cache', 'Vary': 'Accept-Encoding'}
    if 'gzip' in request.headers.get('Accept-Encoding', '') and _exists(path + '.gz'):
        response = send_file(path + '.gz', content_type=ctype, compressed=True)
    elif _exists(path):
        response = send_file(path, content_type=ctype)
    else:
        return 'Not found', 404
    response.headers.update(headers)
    return response
