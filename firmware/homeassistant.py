"""Home Assistant MQTT discovery: the retained config of each entity.

One device per board; every entity reads the board's state topic (the same
status object as SSE) through a value template, and every control sends a
command of the WebSocket's command layer to the commands topic.
Payloads are checked against Home Assistant's own discovery schemas by
tools/ha_schema_check.py (tests/test_homeassistant.py).
"""
import json
from firmware import settings as _settings

_DIAG = 'diagnostic'


def _set(key, value_template):
    return '{"cmd": "set", "key": "%s", "value": %s}' % (key, value_template)


def _zone_sensors(state, names):
    """A motion binary_sensor per zone slot (the zones' names, in order);
    None for a slot with no zone (its retained config is cleared)."""
    for i in range(_settings.MAX_ZONES):
        fields = None
        if i < len(names):
            name = names[i]     # letters, digits, spaces, - and _ (settings.py)
            fields = {'name': 'Motion in ' + name, 'device_class': 'motion',
                      'state_topic': state, 'value_template':
                      "{{ 'ON' if '%s' in value_json.motion_zones else 'OFF' }}" % name}
        yield ('binary_sensor', 'motion_zone_%d' % (i + 1), fields)


def _entities(base, zone_names=()):
    """(component, object id, fields) of every entity; fields None: none now."""
    state = base + 'state'
    commands = base + 'commands'
    setting = '{{ value_json.settings.%s }}'
    return (
        ('camera', 'camera', {'name': 'Camera', 'topic': base + 'camera'}),
        ('binary_sensor', 'motion', {
            'name': 'Motion', 'device_class': 'motion', 'state_topic': state,
            'value_template': "{{ 'ON' if value_json.motion else 'OFF' }}"}),
        ('sensor', 'trigger_count', {
            'name': 'Motion triggers', 'state_topic': state, 'state_class': 'total_increasing',
            'value_template': '{{ value_json.trigger_count }}', 'icon': 'mdi:motion-sensor'}),
        ('sensor', 'snapshot_count', {
            'name': 'Snapshots', 'state_topic': state, 'state_class': 'total_increasing',
            'value_template': '{{ value_json.snapshot_count }}', 'icon': 'mdi:camera'}),
        ('sensor', 'sd_free', {
            'name': 'SD card free', 'state_topic': state, 'device_class': 'data_size',
            'unit_of_measurement': 'B', 'state_class': 'measurement',
            'entity_category': _DIAG, 'value_template': '{{ value_json.sd_free }}'}),
        ('sensor', 'free_heap', {
            'name': 'Free heap', 'state_topic': state, 'device_class': 'data_size',
            'unit_of_measurement': 'B', 'state_class': 'measurement',
            'entity_category': _DIAG, 'value_template': '{{ value_json.free_heap }}'}),
        ('sensor', 'uptime', {
            'name': 'Uptime', 'state_topic': state, 'device_class': 'duration',
            'unit_of_measurement': 's', 'state_class': 'measurement',
            'entity_category': _DIAG, 'value_template': '{{ value_json.uptime_s }}'}),
        ('sensor', 'wifi_signal', {
            'name': 'Wi-Fi signal', 'state_topic': state, 'device_class': 'signal_strength',
            'unit_of_measurement': 'dBm', 'state_class': 'measurement',
            'entity_category': _DIAG, 'value_template': '{{ value_json.rssi }}'}),
        ('button', 'save_snapshot', {
            'name': 'Save snapshot', 'command_topic': commands,
            'payload_press': '{"cmd": "snapshot_now"}', 'icon': 'mdi:camera-iris'}),
        ('button', 'reset_counters', {
            'name': 'Reset counters', 'command_topic': commands,
            'payload_press': '{"cmd": "reset"}', 'icon': 'mdi:counter'}),
        ('button', 'restart', {
            'name': 'Restart', 'command_topic': commands, 'device_class': 'restart',
            'payload_press': '{"cmd": "restart"}', 'entity_category': 'config'}),
        ('switch', 'motion_armed', {
            'name': 'Motion detection armed', 'command_topic': commands,
            'payload_on': _set('motion_armed', 'true'),
            'payload_off': _set('motion_armed', 'false'),
            'state_topic': state, 'state_on': 'ON', 'state_off': 'OFF',
            'value_template': "{{ 'ON' if value_json.settings.motion_armed else 'OFF' }}",
            'entity_category': 'config'}),
        ('number', 'sensitivity', {
            'name': 'Motion sensitivity', 'command_topic': commands,
            'command_template': _set('sensitivity', '{{ value | int }}'),
            'state_topic': state, 'value_template': setting % 'sensitivity',
            'min': 0, 'max': 100, 'step': 1, 'mode': 'slider', 'entity_category': 'config'}),
        ('select', 'framesize', {
            'name': 'Frame size', 'command_topic': commands,
            'command_template': _set('framesize', '"{{ value }}"'),
            'state_topic': state, 'value_template': setting % 'framesize',
            'options': [name for _, name in sorted(_settings.FRAMESIZES.items())],
            'entity_category': 'config'}),
        ('light', 'flash', {
            'name': 'Flash LED', 'schema': 'template', 'command_topic': commands,
            'command_on_template': _set('flash', '{{ brightness | default(255) }}'),
            'command_off_template': _set('flash', '0'),
            'state_topic': state,
            'state_template': "{{ 'on' if value_json.settings.flash > 0 else 'off' }}",
            'brightness_template': setting % 'flash'}),
    ) + tuple(_zone_sensors(state, zone_names))


def configs(board_id, base, version, url, prefix='homeassistant', controls=True,
            zone_names=()):
    """Yield (topic, payload text) of every entity's discovery config;
    without controls (mqtt.commands not "all") a control's payload is empty,
    which removes it from Home Assistant, as is a zone slot's with no zone."""
    device = {'identifiers': ['esp32cam_' + board_id], 'name': 'ESP32-CAM ' + board_id,
              'manufacturer': 'AI-Thinker', 'model': 'ESP32-CAM',
              'sw_version': version, 'configuration_url': url}
    for component, object_id, fields in _entities(base, zone_names):
        if fields is None or not controls and 'command_topic' in fields:
            yield (config_topic(prefix, component, board_id, object_id), '')
            continue
        fields['unique_id'] = fields['object_id'] = 'esp32cam_%s_%s' % (board_id, object_id)
        fields['availability_topic'] = base + 'availability'
        fields['device'] = device
        yield (config_topic(prefix, component, board_id, object_id), json.dumps(fields))


def config_topics(board_id, prefix='homeassistant'):
    """The discovery topic of every entity (to clear them)."""
    for component, object_id, _ in _entities(''):
        yield config_topic(prefix, component, board_id, object_id)


def config_topic(prefix, component, board_id, object_id):
    return '%s/%s/%s/%s/config' % (prefix, component, board_id, object_id)
