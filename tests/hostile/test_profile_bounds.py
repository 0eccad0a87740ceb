"""Profile figures outside physical bounds are refused at load, with the bound in the line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEVICE, LINK, assert_refused, edited

from dse.costmodel import devices
from dse.costmodel.devices import PHYSICAL_BOUNDS, list_devices, list_links, load_device, load_link

DEVICE_CASES = {
    # the absurd pair that used to pass and then overflow a study's costs
    "peak far too low": (
        'fp32 = "10 GFLOP/s"',
        'fp32 = "1e-300 GFLOP/s"',
        "compute.peak_flops.fp32",
        "1 kFLOP/s to 1 EFLOP/s",
    ),
    "active far too high": (
        'active = "3 W"',
        'active = "1e308 W"',
        "power.active",
        "1 uW to 100 kW",
    ),
    "peak far too high": (
        'fp32 = "10 GFLOP/s"',
        "fp32 = 1e30",
        "compute.peak_flops.fp32",
        "1 EFLOP/s",
    ),
    "overhead of an hour": (
        'overhead = "10 us"',
        'overhead = "61 min"',
        "compute.overhead",
        "0 to 60 s",
    ),
    "bandwidth of a bit": (
        'bandwidth = "10 GB/s"',
        'bandwidth = "1 B/s"',
        "memory.bandwidth",
        "1 kB/s",
    ),
    "capacity of a byte": (
        'capacity = "1 GiB"',
        'capacity = "1 B"',
        "memory.capacity",
        "1 kB to 10 PB",
    ),
    # idle 0 W is allowed; a device drawing 1 nW while computing is not
    "active in nanowatts": (
        'idle = "1 W"\nactive = "3 W"',
        'idle = "0 W"\nactive = "1 nW"',
        "power.active",
        "1 uW",
    ),
}

LINK_CASES = {
    "uplink of 1e300 bit/s": ('uplink = "10 Mbit/s"', "uplink = 1e300", "uplink", "10 Tbit/s"),
    "downlink below a bit a second": (
        'downlink = "20 Mbit/s"',
        "downlink = 0.01",
        "downlink",
        "1 bit/s",
    ),
    "rtt of two minutes": ('rtt = "30 ms"', 'rtt = "2 min"', "rtt", "0 to 60 s"),
    "alpha absurd": (
        'alpha = "100 mW/Mbps"',
        'alpha = "1e200 W/Mbps"',
        "radio.alpha",
        "10 kW per Mbit/s",
    ),
    "radio power over the bound": (
        'uplink = "10 Mbit/s"\n',
        'uplink = "1 Tbit/s"\n',
        "radio.alpha",
        "the radio would draw",
    ),
}


@pytest.mark.parametrize("case", DEVICE_CASES, ids=str)
def test_device_figures_outside_physical_bounds_are_refused(case: str, tmp_path: Path):
    old, new, field, fragment = DEVICE_CASES[case]
    path = tmp_path / "absurd.toml"
    path.write_text(edited(DEVICE, old, new))
    err = assert_refused(lambda: load_device(path), field=field, where=path, words=[fragment])
    assert "unit" in (err.fix or "")


@pytest.mark.parametrize("case", LINK_CASES, ids=str)
def test_link_figures_outside_physical_bounds_are_refused(case: str, tmp_path: Path):
    old, new, field, fragment = LINK_CASES[case]
    path = tmp_path / "absurd-link.toml"
    path.write_text(edited(LINK, old, new))
    assert_refused(lambda: load_link(path), field=field, where=path, words=[fragment])


def test_bounds_admit_every_shipped_profile_with_room():
    """Every shipped figure lies inside its bounds, and a microcontroller and a multi-GPU
    server do too (what the bounds are chosen for)."""
    for name in list_devices():
        load_device(name)
    for name in list_links():
        load_link(name)
    real = {  # an 8-bit AVR: ~1 MFLOP/s, 2 KiB SRAM, 1 mW; a DGX B200: ~72 PFLOP/s fp8,
        # 8 x 8 TB/s, 1.4 TB of HBM, 14.3 kW
        "compute.peak_flops": (1e6, 7.2e16),
        "memory.bandwidth": (1e6, 6.4e13),
        "memory.capacity": (2048, 1.44e12),
        "power.active": (1e-3, 1.43e4),
    }
    for key, values in real.items():
        for value in values:
            assert devices.physical_bound_error(key, value) is None, (key, value)
    assert set(real) <= set(PHYSICAL_BOUNDS)


def test_cli_validate_gives_one_line_and_exit_2(tmp_path: Path):
    path = tmp_path / "absurd.toml"
    absurd = edited(DEVICE, 'active = "3 W"', 'active = "1e308 W"')
    path.write_text(edited(absurd, 'fp32 = "10 GFLOP/s"', 'fp32 = "1e-300 GFLOP/s"'))
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-m", "dse.cli", "devices", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "physical bounds" in lines[0], run.stderr
