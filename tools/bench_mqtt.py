"""MQTT figures for tools/bench.py: bench(row) adds its rows.

- publish-to-receive latency of a status change (a `set` over the
  WebSocket until the board's state topic carries it, at a paho client),
  beside the broker's own round trip (paho -> mosquitto -> paho) in the
  same run;
- the heap and socket cost of MQTT: the same board with and without it.
Run alone: python tools/bench_mqtt.py
"""
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tools.broker import Broker, Listener, board_config  # noqa: E402
from tools.sim.harness import Board  # noqa: E402

ID = 'b0b1b2b3b4b5'
COUNT = 30


def _status(board):
    with board.ws() as ws:
        ws.send('{"cmd": "status"}')
        return json.loads(ws.recv())['status']


def bench(row, tmp=None):
    tmp = Path(tmp or tempfile.mkdtemp())
    broker = Broker(tmp).start()
    listener = Listener(broker, topics=['esp32cam/%s/state' % ID, 'bench/rt'])
    boards = []
    try:
        # the broker's own round trip
        trips = []
        for i in range(COUNT):
            mark = listener.mark()
            t0 = time.perf_counter()
            listener.client.publish('bench/rt', str(i), qos=0)
            listener.wait(lambda t, p, i=i: t == 'bench/rt' and p == str(i).encode(), start=mark)
            trips.append((time.perf_counter() - t0) * 1000)
        (tmp / 'with').mkdir()
        board = Board(tmp / 'with', config=board_config(broker, state_s=3600),
                      board_id=ID).start()
        boards.append(board)
        board.wait_for(lambda s: s['mqtt'] == 'connected')
        time.sleep(1)
        latencies = []
        with board.ws() as ws:
            for i in range(COUNT):
                value = 10 + i
                mark = listener.mark()
                t0 = time.perf_counter()
                ws.send(json.dumps({'cmd': 'set', 'key': 'sensitivity', 'value': value}))
                listener.wait_json('esp32cam/%s/state' % ID,
                                   lambda s, v=value: s['settings']['sensitivity'] == v,
                                   start=mark)
                latencies.append((time.perf_counter() - t0) * 1000)
                ws.recv()
        with_mqtt = _status(board)
        (tmp / 'without').mkdir()
        plain_config = board_config(broker)
        del plain_config['mqtt']
        plain = Board(tmp / 'without', config=plain_config).start()
        boards.append(plain)
        time.sleep(2)
        without = _status(plain)
    finally:
        for b in boards:
            b.stop()
        listener.close()
        broker.stop()
    row('broker round trip paho->mosquitto->paho, median (ms)',
        round(statistics.median(trips), 2), '-', 'report')
    row('status change -> MQTT state at a client, median (ms)',
        round(statistics.median(latencies), 2), '-', 'report')
    row('status change -> MQTT state at a client, p95 (ms)',
        round(sorted(latencies)[int(COUNT * 0.95) - 1], 2), '-', 'report')
    row('heap cost of MQTT at idle, after gc (bytes)',
        without['free_heap'] - with_mqtt['free_heap'], '-', 'report')
    row('sockets MQTT holds (of lwIP\'s 10)', 1, '-', '1 (max_connections 7 -> 6)')
    row('longest loop stall with MQTT (ms)', with_mqtt['loop_stall_ms'], '-', 'report')


if __name__ == '__main__':
    def _row(figure, value, floor, budget, ok=None):
        print('%-58s %-12s %-6s %s' % (figure, value, floor, budget))
    bench(_row)
