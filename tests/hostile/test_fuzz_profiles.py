"""Any device or link profile file gives a profile or the one-line InputError (and, through
`dse devices validate` / `dse links validate`, exit 0 or 2), never another exception."""

from __future__ import annotations

import math
import tempfile
import tomllib
from itertools import count
from pathlib import Path

import pytest
from helpers import DEVICE, LINK, inline_text
from helpers.fuzz import FUZZ, mutated, renumbered
from hypothesis import given
from hypothesis import strategies as st

from dse.cli import main
from dse.costmodel.devices import (
    DeviceProfile,
    LinkProfile,
    list_devices,
    list_links,
    profiles_dir,
    validate_file,
)
from dse.errors import InputError

_SHIPPED = [
    tomllib.loads((profiles_dir() / "devices" / f"{n}.toml").read_text()) for n in list_devices()
] + [tomllib.loads((profiles_dir() / "links" / f"{n}.toml").read_text()) for n in list_links()]
BASES = [tomllib.loads(DEVICE), tomllib.loads(LINK), *_SHIPPED]
KEYS = [
    "type",
    "kind",
    "compute",
    "peak_flops",
    "fp32",
    "efficiency",
    "default",
    "conv",
    "sparse_efficiency",
    "2:4",
    "memory",
    "power",
    "energy_per_flop",
    "codec",
    "zstd",
    "predictor",
    "file",
    "sha256",
    "radio",
    "tail_energy",
    "sources",
    "runtime",
]
_UNIQUE = count()


def _load(text: str | bytes) -> None:
    """Load ``text`` as a profile file: a valid, finite profile or the one-line error."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"p{next(_UNIQUE)}.toml"  # a fresh path: no cached load
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        try:
            profile = validate_file(path)
        except InputError as exc:
            assert "\n" not in str(exc)
            return
    assert isinstance(profile, DeviceProfile | LinkProfile)
    numbers = (
        [
            profile.overhead_s,
            profile.mem_bandwidth_Bps,
            profile.mem_capacity_bytes,
            profile.active_power_w,
            *profile.peak_flops.values(),
        ]
        if isinstance(profile, DeviceProfile)
        else [
            profile.uplink_bps,
            profile.downlink_bps,
            profile.rtt_s,
            profile.beta_w,
            profile.uplink_power_w(),
            profile.downlink_power_w(),
        ]
    )
    assert all(math.isfinite(x) for x in numbers)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes(raw: bytes) -> None:
    _load(raw)


@FUZZ
@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    _load(text)


@FUZZ
@given(st.data())
def test_a_valid_profile_with_fields_changed(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(BASES))
    _load(inline_text(data.draw(mutated(base, KEYS))))


@FUZZ
@given(st.data())
def test_a_valid_profile_with_figures_changed(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(BASES))
    _load(inline_text(data.draw(renumbered(base, skip=("sources", "version")))))


@pytest.mark.parametrize("kind", ["devices", "links"])
def test_through_the_cli_exit_0_or_2(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.toml"
    good.write_text(DEVICE if kind == "devices" else LINK)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe type = 1e309")
    assert main([kind, "validate", str(good)]) == 0
    assert main([kind, "validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dse: error: ")
