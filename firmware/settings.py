"""The settings table: one row for each setting a user can change at run time.

A row gives the name, the default, the values it takes, who applies it (the
camera, motion detection or the flash LED) and its name in Espressif's
CameraWebServer API. config.py takes its defaults from here, the `set`
command and `/control?var=` validate with it, `/status` reports from it.
A new camera setting is one row here plus a `set_NAME` method in each camera
adapter (firmware/camera.py); a driver without the method refuses the value.
"""
CAMERA = 'camera'
MOTION = 'motion'
LED = 'led'

# esp32-camera's framesize_t numbers, as CameraWebServer uses them
FRAMESIZES = {1: 'QQVGA', 3: 'QCIF', 4: 'HQVGA', 5: '240X240', 6: 'QVGA',
              8: 'CIF', 9: 'HVGA', 10: 'VGA', 11: 'SVGA', 12: 'XGA',
              13: 'HD', 14: 'SXGA', 15: 'UXGA'}


# The values a setting takes: (low, high) whole numbers, BOOL, MASK, or a
# dict of CameraWebServer number -> name. Plain tuples: no object per row.
BOOL = 'bool'
MASK = 'mask'       # 48 hex digits: a 16 x 12 grid, bit set = cell ignored
ZONES = 'zones'     # up to MAX_ZONES zones (firmware/motionzones.py)
_HEX = '0123456789abcdefABCDEF'
MAX_ZONES = 4
ZONE_KEYS = ('name', 'cells', 'sensitivity', 'count_only')
_NAME_MAX = 16
# a zone's name goes into Home Assistant templates and file comments: no quotes
_NAME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-'

# name: (default, values, applied by, CameraWebServer name or None)
TABLE = {
    'framesize': ('VGA', FRAMESIZES, CAMERA, 'framesize'),
    'quality': (12, (4, 63), CAMERA, 'quality'),
    'brightness': (0, (-2, 2), CAMERA, 'brightness'),
    'contrast': (0, (-2, 2), CAMERA, 'contrast'),
    'saturation': (0, (-2, 2), CAMERA, 'saturation'),
    'gainceiling': (0, (0, 6), CAMERA, 'gainceiling'),
    'vflip': (False, BOOL, CAMERA, 'vflip'),
    'hmirror': (False, BOOL, CAMERA, 'hmirror'),
    'sensitivity': (50, (0, 100), MOTION, None),
    'motion_armed': (True, BOOL, MOTION, None),     # off: triggers are ignored
    'motion_mask': ('0' * 48, MASK, MOTION, None),
    'motion_zones': ([], ZONES, MOTION, None),
    'flash': (0, (0, 255), LED, 'led_intensity'),
}


def valid(values, value):
    """True if `value` is one of `values` (a TABLE row's second field)."""
    if values is BOOL:
        return value is True or value is False
    if values is MASK:
        return isinstance(value, str) and len(value) == 48 and \
            all(c in _HEX for c in value)
    if values is ZONES:
        return isinstance(value, list) and len(value) <= MAX_ZONES and \
            all(_zone_valid(zone, value[:i]) for i, zone in enumerate(value))
    if isinstance(values, dict):
        return isinstance(value, str) and value in values.values()
    return type(value) is int and values[0] <= value <= values[1]


def _zone_valid(zone, before):
    """One zone: exactly ZONE_KEYS, a name of its own, at least one cell."""
    if not isinstance(zone, dict) or len(zone) != len(ZONE_KEYS) or \
            not all(key in zone for key in ZONE_KEYS):
        return False
    name = zone['name']
    if not isinstance(name, str) or not 0 < len(name) <= _NAME_MAX or \
            name != name.strip() or not all(c in _NAME_CHARS for c in name) or \
            name.lower() in [other['name'].lower() for other in before]:
        return False
    return valid(MASK, zone['cells']) and zone['cells'].strip('0') != '' and \
        valid((0, 100), zone['sensitivity']) and valid(BOOL, zone['count_only'])


def describe(values):
    """The values a setting takes, in words (for config errors)."""
    if values is BOOL:
        return 'true or false'
    if values is MASK:
        return '48 hex digits'
    if values is ZONES:
        return ('a list of up to %d zones, each {"name": 1-%d letters, digits, spaces, '
                '- or _, "cells": 48 hex digits not all 0, "sensitivity": 0 to 100, '
                '"count_only": true or false}, names all different' % (MAX_ZONES, _NAME_MAX))
    if isinstance(values, dict):
        return 'one of ' + ', '.join(values[n] for n in sorted(values))
    return '%d to %d' % values


def to_api(values, value):
    """Our value as the CameraWebServer API's number."""
    if values is BOOL:
        return 1 if value else 0
    if isinstance(values, dict):
        for number, name in values.items():
            if name == value:
                return number
        return None
    return value


def from_api(values, number):
    """A CameraWebServer number as our value, or None if it is none."""
    if values is BOOL:
        return number == 1 if number in (0, 1) else None
    if isinstance(values, dict):
        return values.get(number)
    return number


def defaults(owner):
    """{name: default} of the settings `owner` applies."""
    return {name: row[0] for name, row in TABLE.items() if row[2] == owner}


def by_api_name(api_name):
    """Our name of a CameraWebServer variable, or None."""
    for name, row in TABLE.items():
        if row[3] == api_name:
            return name
    return None


class Settings:
    """The current values: validated, applied by their owner, then kept and
    announced in state['settings']. A value the owner refuses changes nothing."""

    def __init__(self, state, appliers, values, on_change=None):
        self.state = state
        self.appliers = appliers        # owner -> function(name, value)
        self.on_change = on_change      # called after each change (kept on flash)
        state.update(settings=dict(values))

    def values(self):
        return self.state.state['settings']

    def set(self, name, value):
        """Validate and apply one setting; the reply dict of `set`."""
        if not isinstance(name, str) or name not in TABLE:
            return {'ok': False, 'error': 'bad value', 'key': name,
                    'reason': 'unknown setting'}
        row = TABLE[name]
        if not valid(row[1], value):
            return {'ok': False, 'error': 'bad value', 'key': name, 'value': value}
        try:
            self.appliers[row[2]](name, value)
        except Exception as exc:
            return {'ok': False, 'error': 'not supported', 'key': name,
                    'reason': str(exc)}
        values = dict(self.values())
        values[name] = value
        if self.state.update(settings=values) and self.on_change:
            self.on_change()
        return {'ok': True, 'key': name, 'value': value}
