"""The CameraWebServer-compatible endpoints answer as that example does."""
import pytest


# CameraWebServer's /status of an OV2640 at esp32-camera's defaults, with the
# simulated board's config (VGA, quality 12): pixformat 4 is JPEG, xclk in MHz
EXAMPLE_STATUS = {
    'framesize': 10, 'quality': 12, 'brightness': 0, 'contrast': 0, 'saturation': 0,
    'hmirror': 0, 'vflip': 0, 'led_intensity': 0, 'pixformat': 4, 'xclk': 20,
    'sharpness': 0, 'special_effect': 0, 'wb_mode': 0, 'awb': 1, 'awb_gain': 1,
    'aec': 1, 'aec2': 0, 'ae_level': 0, 'aec_value': 300, 'agc': 1, 'agc_gain': 0,
    'gainceiling': 0, 'bpc': 0, 'wpc': 1, 'raw_gma': 1, 'lenc': 1, 'dcw': 1, 'colorbar': 0,
}


def test_status_uses_the_example_field_names(board):
    with board.http() as client:
        status = client.get('/status').json()
    assert len(EXAMPLE_STATUS) == 28
    # every field, by exact value (the example's clients parse them as numbers)
    assert {k: status.get(k) for k in EXAMPLE_STATUS} == EXAMPLE_STATUS
    assert all(type(status[k]) is int for k in EXAMPLE_STATUS)


# the value the (default, micropython-camera-API) driver gets for each
SENSOR = {'framesize': ('frame_size', 6), 'quality': ('quality', 73),
          'brightness': ('brightness', -1), 'contrast': ('contrast', 2),
          'saturation': ('saturation', -2), 'hmirror': ('hmirror', True),
          'vflip': ('vflip', True)}


@pytest.mark.parametrize('var, val, key, value', [
    ('framesize', 6, 'framesize', 'QVGA'), ('quality', 20, 'quality', 20),
    ('brightness', -1, 'brightness', -1), ('contrast', 2, 'contrast', 2),
    ('saturation', -2, 'saturation', -2), ('hmirror', 1, 'hmirror', True),
    ('vflip', 1, 'vflip', True), ('led_intensity', 200, 'flash', 200),
])
def test_control_get_changes_a_setting(board, var, val, key, value):
    with board.http() as client:
        response = client.get('/control', params={'var': var, 'val': val})
        assert response.status_code == 200
        assert client.get('/status').json()[var] == val
    assert board.status()['settings'][key] == value
    if var in SENSOR:       # a camera setting: the driver itself got it
        name, number = SENSOR[var]
        assert board.sensor()[name] == number


# README: "framesize numbers follow the current esp32-camera numbering"
FRAMESIZE_NUMBERS = {1: 'QQVGA', 3: 'QCIF', 4: 'HQVGA', 5: '240X240', 6: 'QVGA', 8: 'CIF',
                     9: 'HVGA', 10: 'VGA', 11: 'SVGA', 12: 'XGA', 13: 'HD', 14: 'SXGA',
                     15: 'UXGA'}


def test_every_framesize_number_means_the_documented_size(board):
    with board.http() as client:
        for number, name in FRAMESIZE_NUMBERS.items():
            assert client.get('/control', params={'var': 'framesize', 'val': number}) \
                .status_code == 200
            assert board.status()['settings']['framesize'] == name, number
            assert client.get('/status').json()['framesize'] == number
        for number in (0, 2, 7, 16):        # numbers the table leaves out
            assert client.get('/control', params={'var': 'framesize', 'val': number}) \
                .status_code == 500


@pytest.mark.parametrize('params, status', [
    ({'var': 'framesize', 'val': 99}, 500), ({'var': 'quality', 'val': 99}, 500),
    ({'var': 'hmirror', 'val': 2}, 500), ({'var': 'nonsense', 'val': 1}, 500),
    ({'var': 'quality', 'val': 'x'}, 400), ({'var': 'quality'}, 400), ({}, 400),
])
def test_control_get_refuses_bad_values_and_changes_nothing(board, params, status):
    before = board.status()['settings']
    with board.http() as client:
        assert client.get('/control', params=params).status_code == status
    assert board.status()['settings'] == before


def test_websocket_control_still_works_on_the_same_path(board):
    with board.ws() as ws:
        assert board.command(ws, cmd='status')['ok'] is True
