"""One rule names a device's hardware (issue 16, item 9)."""

import pytest

from hwprof.latency.devices import hardware_name


@pytest.mark.parametrize("info, name", [
    ({"gpu_name": "H200", "board_model": "x", "cpu_model": "Xeon"}, "H200"),
    ({"gpu_name": None, "board_model": "Raspberry Pi 4", "cpu_model": "Cortex-A72"},
     "Raspberry Pi 4"),
    ({"board_model": "", "cpu_model": "Xeon"}, "Xeon"),
    ({}, None), (None, None),
])
def test_hardware_name_prefers_gpu_then_board_then_cpu(info, name):
    assert hardware_name(info) == name
