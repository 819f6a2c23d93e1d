# The firmware's version: discovery (MQTT) reports it; tools/boardfiles.py reads it.
VERSION = '0.2.0'


def build_number(version):
    """MAJOR.MINOR.PATCH (a "-note" after it aside) as one number that grows
    with the version, MAJOR * 10^6 + MINOR * 10^3 + PATCH: an update must
    carry a larger one than the board runs (firmware/ota.py, tools/ota.py).
    ValueError for any other form."""
    parts = version.split('-')[0].split('.')
    if len(parts) != 3:
        raise ValueError('version is not MAJOR.MINOR.PATCH: %s' % version)
    number = 0
    for part in parts:
        if not part.isdigit() or len(part) > 3:
            raise ValueError('version is not MAJOR.MINOR.PATCH: %s' % version)
        number = number * 1000 + int(part)
    return number
