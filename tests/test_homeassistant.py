"""Home Assistant sees one device per board: every discovery config passes
Home Assistant's own schemas (build/ha-venv, tools/ha_schema_check.py),
and using each entity the way Home Assistant would (its command payloads
and templates) changes the board as the WebSocket would."""
import json
import subprocess
import time


from tools.broker import Listener, board_config
from tools.sim.harness import SSE
from tools import ha_schema_check

ID = '0a1b2c3d4e5f'
BASE = 'esp32cam/%s/' % ID
PREFIX = 'homeassistant/'


def discovery(listener, count=15, start=0, cleared=False):
    """{(component, object id): config} of the board's discovery messages
    (the empty ones, which remove an entity, as None if `cleared`)."""
    deadline = time.monotonic() + 20
    while True:
        configs = {}
        for topic, payload, _ in listener.messages[start:]:
            parts = topic.split('/')
            if topic.startswith(PREFIX) and len(parts) == 5 and parts[2] == ID:
                configs[(parts[1], parts[3])] = json.loads(payload) if payload else None
        if not cleared:
            configs = {key: config for key, config in configs.items() if config is not None}
        if len(configs) >= count or time.monotonic() > deadline:
            return configs
        time.sleep(0.1)


def retained_configs(broker):
    """[topic, payload] of every discovery config the broker keeps: what
    Home Assistant gets when it starts."""
    late = Listener(broker, topics=[PREFIX + '#'])
    time.sleep(1)
    retained = [[t, p.decode()] for t, p, r in late.messages if r]
    late.close()
    return retained


def schema_check(python, payloads):
    return subprocess.run([python, ha_schema_check.__file__], input=json.dumps(payloads),
                          capture_output=True, text=True)


def render(template, **values):
    """The few Jinja forms our command templates use, as Home Assistant renders them."""
    out = template
    for name, value in values.items():
        if '{{ %s | int }}' % name in out:
            out = out.replace('{{ %s | int }}' % name, str(int(value)))
        out = out.replace('{{ %s | default(255) }}' % name, str(value))
        out = out.replace('{{ %s }}' % name, str(value))
    return out.replace('{{ brightness | default(255) }}', '255')


def test_discovery_passes_home_assistants_own_schemas(make_board, broker, listener):
    python = ha_schema_check.setup()
    make_board(config=board_config(broker), board_id=ID).start()
    configs = discovery(listener)
    assert sorted(configs) == sorted([
        ('camera', 'camera'), ('binary_sensor', 'motion'), ('sensor', 'trigger_count'),
        ('sensor', 'snapshot_count'), ('sensor', 'sd_free'), ('sensor', 'free_heap'),
        ('sensor', 'uptime'), ('sensor', 'wifi_signal'), ('button', 'save_snapshot'),
        ('button', 'reset_counters'), ('button', 'restart'), ('switch', 'motion_armed'),
        ('number', 'sensitivity'), ('select', 'framesize'), ('light', 'flash')])
    payloads = retained_configs(broker)
    assert len(payloads) == 15
    check = schema_check(python, payloads)
    assert check.returncode == 0, check.stdout + check.stderr
    # the checker does catch a key Home Assistant would ignore, and a bad value
    bad = json.loads(payloads[0][1])
    bad['state_topik'] = 'x'
    check = schema_check(python, [[payloads[0][0], json.dumps(bad)]])
    assert check.returncode == 1 and 'state_topik' in check.stdout
    for config in configs.values():
        device = config['device']
        assert device['identifiers'] == ['esp32cam_' + ID]
        assert device['sw_version'] and device['model']
        assert device['configuration_url'].startswith('http://')
        assert config['availability_topic'] == BASE + 'availability'
    sensors = {o: c for (k, o), c in configs.items() if k == 'sensor'}
    assert sensors['trigger_count']['state_class'] == 'total_increasing'
    assert sensors['snapshot_count']['state_class'] == 'total_increasing'
    assert all(sensors[o]['entity_category'] == 'diagnostic'
               for o in ('sd_free', 'free_heap', 'uptime', 'wifi_signal'))



def test_the_sensitivity_slider_goes_down_to_0(make_board, broker, listener):
    # Home Assistant's number defaults to min 1, max 100: without "min": 0
    # its slider could never switch motion detection off (sensitivity 0)
    board = make_board(config=board_config(broker), board_id=ID).start()
    number = discovery(listener)[('number', 'sensitivity')]
    assert (number.get('min', 1), number.get('max', 100)) == (0, 100), number
    mark = listener.mark()
    listener.publish(number['command_topic'], render(number['command_template'], value=0.0))
    assert listener.wait_json(BASE + 'results', start=mark)['ok'] is True
    assert board.status()['settings']['sensitivity'] == 0


def test_every_control_works_as_home_assistant_uses_it(make_board, broker, listener):
    board = make_board(config=board_config(broker), board_id=ID).start()
    board.wait_frame()
    configs = discovery(listener)
    sse = SSE(board)

    def press(component, object_id, payload):
        mark = listener.mark()
        listener.publish(configs[(component, object_id)]['command_topic'], payload)
        return listener.wait_json(BASE + 'results', start=mark)

    reply = press('button', 'save_snapshot', configs[('button', 'save_snapshot')]['payload_press'])
    assert reply['ok'] is True
    name = reply['saved'].rsplit('/', 1)[1]
    assert name in board.card_files()
    sse.until(lambda s: s['snapshot_count'] >= 1)

    switch = configs[('switch', 'motion_armed')]
    assert press('switch', 'motion_armed', switch['payload_off'])['ok'] is True
    sse.until(lambda s: s['settings']['motion_armed'] is False)
    state = listener.wait_json(BASE + 'state', lambda s: s['settings']['motion_armed'] is False)
    assert render(switch['value_template'].replace(
        'value_json.settings.motion_armed', str(state['settings']['motion_armed'])))
    assert press('switch', 'motion_armed', switch['payload_on'])['ok'] is True
    sse.until(lambda s: s['settings']['motion_armed'] is True)

    number = configs[('number', 'sensitivity')]
    assert press('number', 'sensitivity', render(number['command_template'], value=37.0))['ok']
    sse.until(lambda s: s['settings']['sensitivity'] == 37)

    select = configs[('select', 'framesize')]
    assert 'QVGA' in select['options']
    assert press('select', 'framesize', render(select['command_template'], value='QVGA'))['ok']
    sse.until(lambda s: s['settings']['framesize'] == 'QVGA')

    light = configs[('light', 'flash')]
    assert press('light', 'flash', render(light['command_on_template'], brightness=128))['ok']
    sse.until(lambda s: s['settings']['flash'] == 128)
    assert press('light', 'flash', render(light['command_on_template']))['ok']
    sse.until(lambda s: s['settings']['flash'] == 255)
    assert press('light', 'flash', light['command_off_template'])['ok']
    sse.until(lambda s: s['settings']['flash'] == 0)

    # a bad payload on the command topic: an error, nothing changed
    reply = press('number', 'sensitivity', render(number['command_template'], value=500))
    assert reply['ok'] is False and reply['error'] == 'bad value'
    assert press('select', 'framesize', render(select['command_template'], value='HUGE'))['ok'] is False
    with board.ws() as ws:
        settings = board.command(ws, cmd='status')['status']['settings']
    assert settings['sensitivity'] == 37 and settings['framesize'] == 'QVGA'

    assert press('button', 'reset_counters', configs[('button', 'reset_counters')]['payload_press'])['ok']
    sse.until(lambda s: s['trigger_count'] == 0 and s['snapshot_count'] == 0)
    sse.close()

    mark = listener.mark()
    assert press('button', 'restart', configs[('button', 'restart')]['payload_press'])['restarting']
    listener.wait(lambda t, p: t == BASE + 'availability' and p == b'offline', start=mark)
    listener.wait(lambda t, p: t == BASE + 'availability' and p == b'online', start=mark)
    assert board.wait_for(lambda s: s['mqtt'] == 'connected')['uptime_s'] < 30


def test_motion_turns_the_binary_sensor_on_then_off_and_disarmed_ignores_it(
        make_board, broker, listener):
    config = board_config(broker)
    config['motion']['cooldown_s'] = 1
    board = make_board(config=config, board_id=ID).start()
    sensor = discovery(listener)[('binary_sensor', 'motion')]
    assert sensor['value_template'] == "{{ 'ON' if value_json.motion else 'OFF' }}"
    on = listener.wait_json(BASE + 'state', lambda s: s['motion'] is True, timeout=40)
    mark = listener.mark()
    listener.wait_json(BASE + 'state', lambda s: s['motion'] is False, timeout=40, start=mark)
    listener.wait_json(BASE + 'events', lambda e: e['event'] == 'motion_end', timeout=5)
    assert on['trigger_count'] >= 1
    # disarmed: the walker comes by again and nothing fires
    listener.publish(BASE + 'commands', json.dumps(
        {'cmd': 'set', 'key': 'motion_armed', 'value': False}))
    listener.wait_json(BASE + 'results')
    before = board.status()['trigger_count']
    mark = listener.mark()
    time.sleep(8)       # more than one replay of the frames (the walker included)
    assert board.status()['trigger_count'] == before
    assert not any(t == BASE + 'events' and b'"motion"' in p
                   for t, p, _ in listener.messages[mark:])


def test_discovery_again_when_home_assistant_comes_online_and_cleared_when_off(
        make_board, broker, listener):
    board = make_board(config=board_config(broker), board_id=ID).start()
    assert len(discovery(listener)) == 15
    mark = listener.mark()
    listener.publish('homeassistant/status', 'online')
    assert len(discovery(listener, start=mark)) == 15
    board.stop()
    # the feature taken out of the config: the retained configs are cleared
    mark = listener.mark()
    off = make_board(config=board_config(broker, discovery=False), board_id=ID).start()
    cleared = discovery(listener, count=19, start=mark, cleared=True)   # 4 zone slots too
    assert len(cleared) == 19 and all(c is None for c in cleared.values())
    late = Listener(broker, topics=[PREFIX + '#'])
    time.sleep(1)
    assert [t for t, p, _ in late.messages if p] == []      # nothing retained any more
    late.close()
    off.stop()


def render_jinja(python, template, value_json):
    """A value template rendered by Jinja2 from Home Assistant's venv."""
    code = 'import jinja2, json, sys; t, v = json.load(sys.stdin); ' \
           'print(jinja2.Template(t).render(value_json=v))'
    done = subprocess.run([python, '-c', code], input=json.dumps([template, value_json]),
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_each_motion_zone_is_a_binary_sensor_that_comes_and_goes_with_the_zone(
        make_board, broker, listener):
    python = ha_schema_check.setup()
    left, right = 'ff00' * 12, '00ff' * 12          # 16 x 12 cells: the left, the right half
    zones = [{'name': 'front door', 'cells': left, 'sensitivity': 50, 'count_only': False},
             {'name': 'street', 'cells': right, 'sensitivity': 50, 'count_only': True}]
    config = board_config(broker)
    config['motion'].update(motion_zones=zones, cooldown_s=1)
    board = make_board(config=config, board_id=ID).start()
    configs = discovery(listener, count=17)
    door, street = configs[('binary_sensor', 'motion_zone_1')], \
        configs[('binary_sensor', 'motion_zone_2')]
    assert (door['name'], street['name']) == ('Motion in front door', 'Motion in street')
    assert door['device_class'] == 'motion' and door['state_topic'] == BASE + 'state'
    payloads = retained_configs(broker)
    assert len(payloads) == 17
    check = schema_check(python, payloads)
    assert check.returncode == 0, check.stdout + check.stderr
    # the template, as Home Assistant renders it, follows the zone's motion
    on = listener.wait_json(BASE + 'state', lambda s: 'front door' in s['motion_zones'],
                            timeout=40)
    assert render_jinja(python, door['value_template'], on) == 'ON'
    off = listener.wait_json(BASE + 'state', lambda s: 'front door' not in s['motion_zones'],
                             timeout=40, start=listener.mark())
    assert render_jinja(python, door['value_template'], off) == 'OFF'
    # new cells, the same names: nothing for Home Assistant to learn again
    mark = listener.mark()
    moved = [dict(zones[0], cells='f' * 48), zones[1]]
    listener.publish(BASE + 'commands', json.dumps(
        {'cmd': 'set', 'key': 'motion_zones', 'value': moved}))
    assert listener.wait_json(BASE + 'results', start=mark)['ok'] is True
    listener.wait_json(BASE + 'state', lambda s: s['settings']['motion_zones'] == moved,
                       start=mark)
    time.sleep(2)
    assert not [t for t, _, _ in listener.messages[mark:] if t.startswith(PREFIX)]
    # a zone deleted: its sensor goes, the other one is announced in its slot
    mark = listener.mark()
    listener.publish(BASE + 'commands', json.dumps(
        {'cmd': 'set', 'key': 'motion_zones', 'value': zones[1:]}))
    assert listener.wait_json(BASE + 'results', start=mark)['ok'] is True
    again = discovery(listener, count=19, start=mark, cleared=True)
    assert again[('binary_sensor', 'motion_zone_1')]['name'] == 'Motion in street'
    assert again[('binary_sensor', 'motion_zone_2')] is None
    assert len(retained_configs(broker)) == 16
