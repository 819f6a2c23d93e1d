# Simulator only, never goes onto a board: reads a flash image the way the
# board does, with the unix port's own vfs.VfsLfs2, mounted read-only.
#   micropython tools/sim/flashtool.py IMG list       -> JSON {path: [size, sha256 hex]}
#   micropython tools/sim/flashtool.py IMG cat PATH   -> the file's bytes, as hex
#   micropython tools/sim/flashtool.py IMG put-new PATH SRC -> "written" (the host
#     file SRC copied to PATH), or "kept" when PATH is there (set-up credentials);
#     a file, not an argument: the unix port dies on an argument over ~250 bytes
import sys
import json
import os
import vfs
import hashlib
import binascii

sys.path.insert(0, __file__.rsplit('/', 1)[0])
from flash import FlashBlockDev, open_fs  # noqa: E402

_MOUNT = '/flashimage'


def _walk(path, out):
    for entry in os.ilistdir(path):
        name, kind = entry[0], entry[1]
        full = path + '/' + name
        if kind == 0x4000:
            out[full[len(_MOUNT) + 1:] + '/'] = None
            _walk(full, out)
        else:
            h = hashlib.sha256()
            size = 0
            with open(full, 'rb') as f:
                while True:
                    chunk = f.read(4096)
                    if not chunk:
                        break
                    h.update(chunk)
                    size += len(chunk)
            out[full[len(_MOUNT) + 1:]] = [size, binascii.hexlify(h.digest()).decode()]


def main():
    image, command = sys.argv[1], sys.argv[2]
    if command == 'put-new':
        vfs.mount(open_fs(image), _MOUNT)       # created and formatted when new
        path = _MOUNT + '/' + sys.argv[3]
        try:
            os.stat(path)
            print('kept')
        except OSError:
            with open(sys.argv[4], 'rb') as src:
                data = src.read()
            with open(path + '.part', 'wb') as f:
                f.write(data)
            os.rename(path + '.part', path)
            print('written')
        vfs.umount(_MOUNT)
        return
    vfs.mount(vfs.VfsLfs2(FlashBlockDev(image)), _MOUNT, readonly=True)
    if command == 'list':
        out = {}
        _walk(_MOUNT, out)
        print(json.dumps(out))
    elif command == 'cat':
        with open(_MOUNT + '/' + sys.argv[3], 'rb') as f:
            print(binascii.hexlify(f.read()).decode())


main()
