"""Device and link profiles: every shipped file, the registry, and every bad-input error."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path

import pytest
from helpers import DEVICE, LINK, assert_refused, edited

from dse.costmodel import devices
from dse.costmodel.devices import (
    DeviceProfile,
    LinkProfile,
    list_devices,
    list_links,
    load_device,
    load_link,
    validate_file,
)
from dse.costmodel.kinds import OP_KINDS
from dse.errors import InputError

EDGE = {
    "raspberry-pi-4",
    "jetson-nano",
    "jetson-orin-nano",
    "snapdragon-855",
    "stm32h7",
    "esp32-s3",
    "raspberry-pi-zero-2w",
    "coral-dev-board-micro",
}
#: Links whose radio is a low-power one (tens of mW, not the watts of a phone's).
LOW_POWER_LINKS = {"ble5"}
SERVER = {"a100", "xeon-8380", "epyc-7763"}
LINKS = {"3g", "lte", "wifi", "5g", "5g-mmwave"}
STATUS = re.compile(r"^[SDUEM](\s*/\s*[SDUEM])*\s*:")
MAP_TABLES = {"compute.peak_flops", "compute.efficiency", "compute.sparse_efficiency"}


def numeric_leaves(table: dict, prefix: str = "") -> list[str]:
    """Dotted names of every number or 'VALUE UNIT' string, read from the raw TOML."""
    skip = {"type", "name", "version", "kind", "description", "source", "dtype", "sources"}
    names = []
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if not prefix and key in skip or prefix == "compute" and key == "dtype":
            continue
        if isinstance(value, dict):
            names += numeric_leaves(value, name)
        else:
            names.append(name)
    return names


# --- the shipped profiles ---------------------------------------------------------------


def test_shipped_sets_are_complete():
    assert set(list_devices()) >= EDGE | SERVER
    assert set(list_links()) >= LINKS
    assert list_devices() == sorted(list_devices())
    assert list_links() == sorted(list_links())


@pytest.mark.parametrize("name", list_devices())
def test_shipped_device_loads_and_validates(name: str):
    profile = load_device(name)
    assert isinstance(profile, DeviceProfile)
    assert profile.name == name == profile.path.stem
    assert profile.version >= 1
    assert profile.kind == ("edge" if name in EDGE else "server")
    assert profile.peak == profile.peak_flops[profile.dtype] > 0
    assert 0 < profile.eff("conv") <= 1 and 0 < profile.eff("activation") <= 1
    assert profile.mem_bandwidth_Bps > 0 and profile.mem_capacity_bytes > 0
    assert 0 <= profile.idle_power_w <= profile.active_power_w
    assert profile.description and profile.source
    assert validate_file(profile.path) == profile


@pytest.mark.parametrize("name", list_links())
def test_shipped_link_loads_and_validates(name: str):
    link = load_link(name)
    assert isinstance(link, LinkProfile)
    assert link.name == name == link.path.stem
    assert link.uplink_bps > 0 and link.downlink_bps > 0 and link.rtt_s >= 0
    assert link.uplink_power_w() == pytest.approx(
        link.alpha_w_per_mbps * link.uplink_bps / 1e6 + link.beta_w
    )
    # A phone radio draws watts, not tens of watts: guards against unit slips in alpha;
    # a BLE radio draws milliwatts, not watts.
    if name in LOW_POWER_LINKS:
        assert 0.005 < link.uplink_power_w() < 0.1
    else:
        assert 0.1 < link.uplink_power_w() < 15
    assert validate_file(link.path) == link


@pytest.mark.parametrize(
    "path",
    [devices.profiles_dir() / "devices" / f"{n}.toml" for n in list_devices()]
    + [devices.profiles_dir() / "links" / f"{n}.toml" for n in list_links()],
    ids=lambda p: p.stem,
)
def test_every_numeric_field_has_a_status_marked_source(path: Path):
    """Read the raw TOML independently of the loader: each number is cited."""
    raw = tomllib.loads(path.read_text())
    sources = raw["sources"]
    for field in numeric_leaves(raw):
        # a field, or a table it lies in: a per-kind table or one pattern's sparse kernels
        parents = [field.rsplit(".", i)[0] for i in range(1, field.count(".") + 1)]
        cited = [
            p
            for p in parents
            if p in sources and (p in MAP_TABLES or p.startswith("compute.sparse_efficiency."))
        ]
        assert field in sources or cited, f"{field} uncited"
        key = field if field in sources else cited[0]
        assert STATUS.match(sources[key]), f"{field}: {sources[key]!r} lacks S/D/U/E/M"
    # and the loader keeps them
    profile = validate_file(path)
    assert dict(profile.sources) == sources


def test_figures_from_references_are_carried_exactly():
    pi = load_device("raspberry-pi-4")
    assert pi.peak == 48e9 and pi.mem_bandwidth_Bps == 5.6e9
    assert (pi.idle_power_w, pi.active_power_w) == (1.6, 5.0)
    assert pi.mem_capacity_bytes == 4 * 2**30
    nano = load_device("jetson-nano")
    assert nano.peak_flops["fp16"] == 472e9 and nano.mem_bandwidth_Bps == 25.6e9
    orin = load_device("jetson-orin-nano")
    assert orin.peak_flops["fp32"] == 1024 * 2 * 625e6 and orin.mem_bandwidth_Bps == 68e9
    a100 = load_device("a100")
    assert a100.peak_flops["fp32"] == 19.5e12 and a100.peak_flops["tf32"] == 156e12
    assert a100.mem_bandwidth_Bps == 2039e9 and a100.active_power_w == 400
    assert load_device("xeon-8380").mem_bandwidth_Bps == 8 * 3200e6 * 8
    lte = load_link("lte")
    assert (lte.uplink_bps, lte.downlink_bps, lte.rtt_s) == (5.85e6, 13e6, 0.021)
    assert (lte.alpha_w_per_mbps, lte.beta_w) == (0.43839, 1.28804)
    assert lte.tail_energy_j == pytest.approx(11.6 * 1.06)
    assert load_link("3g").uplink_bps == 1.1e6
    assert load_link("wifi").alpha_w_per_mbps == 0.28317
    assert load_link("5g-mmwave").rtt_s == 0.007


def test_5g_radio_power_is_two_and_a_half_times_lte_at_the_operating_point():
    lte = load_link("lte").uplink_power_w()
    for name in ("5g", "5g-mmwave"):
        assert load_link(name).uplink_power_w() == pytest.approx(2.5 * lte, rel=1e-3)


def test_only_the_a100_has_sparse_kernels_and_only_2_4_for_conv_and_linear():
    a100 = load_device("a100")
    assert set(a100.sparse_efficiency) == {"2:4"}
    assert a100.sparse_eff("conv", "2:4") == pytest.approx(0.3)
    assert a100.sparse_eff("linear", "2:4") == pytest.approx(0.3)
    assert a100.sparse_eff("depthwise_conv", "2:4") is None
    # its 2:4 tensor cores do not run predefined (random regular) patterns
    assert a100.sparse_eff("conv", "predefined") is None
    assert a100.sparse_kernels("conv") == {"2:4": pytest.approx(0.3)}
    for name in list_devices():
        if name != "a100":
            assert load_device(name).sparse_efficiency == {}
            assert load_device(name).sparse_kernels("conv") == {}


def test_eff_falls_back_to_default():
    pi = load_device("raspberry-pi-4")
    assert pi.eff("conv") == 0.3
    assert pi.eff("softmax") == pi.efficiency["default"] == 0.1
    assert pi.eff("no-such-kind") == 0.1


def test_profiles_are_frozen():
    pi = load_device("raspberry-pi-4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pi.peak_flops = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        pi.efficiency["conv"] = 1.0  # type: ignore[index]
    assert hash(pi) == hash(load_device("raspberry-pi-4"))


def test_load_is_cached_and_reloads_an_edited_file(tmp_path: Path):
    path = tmp_path / "dev.toml"
    path.write_text(DEVICE)
    first = load_device(path)
    assert load_device(str(path)) is first
    path.write_text(edited(DEVICE, 'capacity = "1 GiB"', 'capacity = "2 GiB"'))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_device(path).mem_capacity_bytes == 2 * 2**30


def test_shipped_folder_can_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "tiny.toml").write_text(DEVICE)
    monkeypatch.setenv("DSE_PROFILES", str(tmp_path))
    assert list_devices() == ["tiny"]
    assert list_links() == []
    assert load_device("tiny").mem_capacity_bytes == 2**30


def test_direct_construction_freezes_tables_and_checks_invariants():
    kw = dict(
        name="x",
        version=1,
        kind="edge",
        description="d",
        source="s",
        path=None,
        peak_flops={"fp32": 1e9},
        dtype="fp32",
        efficiency={"default": 0.5},
        sparse_efficiency={},
        overhead_s=0.0,
        mem_bandwidth_Bps=1e9,
        mem_capacity_bytes=1e9,
        idle_power_w=1.0,
        active_power_w=2.0,
    )
    profile = DeviceProfile(**kw)
    with pytest.raises(TypeError):
        profile.peak_flops["fp16"] = 2e9  # type: ignore[index]
    with pytest.raises(ValueError, match="dtype"):
        DeviceProfile(**{**kw, "dtype": "fp16"})
    with pytest.raises(ValueError, match="default"):
        DeviceProfile(**{**kw, "efficiency": {"conv": 0.5}})


# --- registry errors --------------------------------------------------------------------


def test_unknown_device_name_lists_the_known_ones():
    with pytest.raises(InputError) as info:
        load_device("raspberry-pi-5")
    message = str(info.value)
    assert info.value.field == "name"
    assert "unknown device 'raspberry-pi-5'" in message
    assert all(name in message for name in list_devices())


def test_unknown_link_name_lists_the_known_ones():
    with pytest.raises(InputError) as info:
        load_link("6g")
    assert "unknown link '6g'" in str(info.value)
    assert all(name in str(info.value) for name in list_links())


def test_missing_user_file(tmp_path: Path):
    with pytest.raises(InputError) as info:
        load_device(tmp_path / "absent.toml")
    assert "absent.toml" in str(info.value) and info.value.field == "<file>"
    with pytest.raises(InputError, match="no such file"):
        validate_file(tmp_path / "absent.toml")


def test_a_link_is_not_a_device(tmp_path: Path):
    path = tmp_path / "link.toml"
    path.write_text(LINK)
    with pytest.raises(InputError) as info:
        load_device(path)
    assert info.value.field == "type" and "link.toml" in str(info.value)
    assert isinstance(validate_file(path), LinkProfile)
    path.write_text(DEVICE)
    with pytest.raises(InputError, match="not a link"):
        load_link(path)


# --- bad files --------------------------------------------------------------------------


def test_the_test_fixtures_are_valid(tmp_path: Path):
    (tmp_path / "d.toml").write_text(DEVICE)
    (tmp_path / "l.toml").write_text(LINK)
    device = validate_file(tmp_path / "d.toml")
    link = validate_file(tmp_path / "l.toml")
    assert isinstance(device, DeviceProfile) and device.peak == 10e9
    assert device.overhead_s == 10e-6 and device.sparse_efficiency == {}
    assert isinstance(link, LinkProfile) and link.uplink_bps == 10e6
    assert link.uplink_power_w() == pytest.approx(0.1 * 10 + 0.5)
    assert link.tail_energy_j == 0.0


# (old text, new text, dotted field, fragment of the reason or fix)
DEVICE_CASES = {
    "missing field": ('name = "tiny"\n', "", "name", "missing required field"),
    "missing nested field": ('capacity = "1 GiB"\n', "", "memory.capacity", "missing"),
    "missing table": ('[power]\nidle = "1 W"\nactive = "3 W"\n', "", "power", "missing"),
    "wrong type": ("version = 1", 'version = "one"', "version", "expected an integer"),
    "version zero": ("version = 1", "version = 0", "version", "at least 1"),
    "wrong type of quantity": (
        'overhead = "10 us"',
        "overhead = true",
        "compute.overhead",
        "a boolean",
    ),
    "table expected": (
        'peak_flops = { fp32 = "10 GFLOP/s" }',
        'peak_flops = "10 GFLOP/s"',
        "compute.peak_flops",
        "expected a table, got a string",
    ),
    "zero bandwidth": (
        'bandwidth = "10 GB/s"',
        'bandwidth = "0 GB/s"',
        "memory.bandwidth",
        "must be positive",
    ),
    "negative peak": (
        'fp32 = "10 GFLOP/s"',
        'fp32 = "-10 GFLOP/s"',
        "compute.peak_flops.fp32",
        "must be positive",
    ),
    "zero capacity": ('capacity = "1 GiB"', "capacity = 0", "memory.capacity", "positive"),
    "negative overhead": (
        'overhead = "10 us"',
        'overhead = "-1 us"',
        "compute.overhead",
        "negative",
    ),
    "efficiency above one": ("conv = 0.3", "conv = 1.5", "compute.efficiency.conv", "(0, 1]"),
    "efficiency zero": ("default = 0.2", "default = 0", "compute.efficiency.default", "(0, 1]"),
    "unknown key": (
        'kind = "edge"\n',
        'kind = "edge"\ncolour = "red"\n',
        "colour",
        "allowed at the top level: type, name",
    ),
    "unknown nested key": (
        'bandwidth = "10 GB/s"',
        'bandwith = "10 GB/s"',
        "memory.bandwith",
        "allowed in [memory]: bandwidth, capacity",
    ),
    "unknown dtype": (
        'fp32 = "10 GFLOP/s"',
        'fp32 = "10 GFLOP/s", fp33 = 1',
        "compute.peak_flops.fp33",
        "fp16",
    ),
    "unknown unit": (
        '"10 GB/s"',
        '"10 GB/fortnight"',
        "memory.bandwidth",
        "unknown unit 'GB/fortnight'",
    ),
    "bad toml": ('name = "tiny"', 'name = "tiny', "<toml>", "line 2"),
    "unknown op kind": (
        "conv = 0.3",
        "convolution = 0.3",
        "compute.efficiency.convolution",
        "unknown op kind 'convolution'",
    ),
    "unknown sparse op kind": (
        "[memory]",
        '[compute.sparse_efficiency."2:4"]\nconvs = 0.2\n[memory]',
        "compute.sparse_efficiency.2:4.convs",
        "unknown op kind",
    ),
    "default in sparse table": (
        "[memory]",
        "[compute.sparse_efficiency.predefined]\ndefault = 0.2\n[memory]",
        "compute.sparse_efficiency.predefined.default",
        "not allowed",
    ),
    "sparse kernels without a pattern": (
        "[memory]",
        "[compute.sparse_efficiency]\nconv = 0.2\n[memory]",
        "compute.sparse_efficiency.conv",
        "under a sparsity pattern",
    ),
    "unknown sparse pattern": (
        "[memory]",
        "[compute.sparse_efficiency.block]\nconv = 0.2\n[memory]",
        "compute.sparse_efficiency.block",
        "unknown sparsity pattern 'block'",
    ),
    "N:M keeping everything": (
        "[memory]",
        '[compute.sparse_efficiency."4:4"]\nconv = 0.2\n[memory]',
        "compute.sparse_efficiency.4:4",
        "N must be below M",
    ),
    "no default efficiency": ("default = 0.2\n", "", "compute.efficiency.default", "missing"),
    "dtype without peak": ('dtype = "fp32"', 'dtype = "fp16"', "compute.dtype", "no peak"),
    "bad kind": ('kind = "edge"', 'kind = "cloud"', "kind", "one of: edge, server"),
    "bad type": ('type = "device"', 'type = "gpu"', "type", "one of: device, link"),
    "no type": ('type = "device"\n', "", "type", "missing"),
    "bad name": ('name = "tiny"', 'name = "my device"', "name", "plain name"),
    "active below idle": ('active = "3 W"', 'active = "0.5 W"', "power.active", "below power.idle"),
    "half an energy model": (
        'active = "3 W"',
        'active = "3 W"\nenergy_per_flop = "1 pJ"',
        "power.energy_per_byte",
        "both",
    ),
    "missing source": (
        '"memory.capacity" = "S: spec sheet"\n',
        "",
        "memory.capacity",
        "no entry in [sources]",
    ),
    "source without status": (
        '"memory.bandwidth" = "S: spec sheet"',
        '"memory.bandwidth" = "spec sheet"',
        'sources."memory.bandwidth"',
        "begin it with S:, D:, U:, E: or M:",
    ),
    "source for nothing": (
        '"power.idle" = "M',
        '"memory.speed" = "S: x"\n"power.idle" = "M',
        'sources."memory.speed"',
        "memory.bandwidth",
    ),
    "empty source": (
        '"compute.overhead" = "E: guess"',
        '"compute.overhead" = ""',
        'sources."compute.overhead"',
        "non-empty",
    ),
    "missing sources table": ("[sources]", "[notes]", "notes", "unknown key"),
}


@pytest.mark.parametrize("case", DEVICE_CASES, ids=str)
def test_bad_device_files(case: str, tmp_path: Path):
    old, new, field, fragment = DEVICE_CASES[case]
    path = tmp_path / "broken-device.toml"
    path.write_text(edited(DEVICE, old, new))
    assert_refused(lambda: load_device(path), field=field, where=path, words=[fragment])


LINK_CASES = {
    "zero uplink": ('uplink = "10 Mbit/s"', 'uplink = "0 Mbit/s"', "uplink", "positive"),
    "negative rtt": ('rtt = "30 ms"', 'rtt = "-1 ms"', "rtt", "negative"),
    "wrong unit for alpha": ('alpha = "100 mW/Mbps"', 'alpha = "1 W"', "radio.alpha", "W/Mbps"),
    "missing beta": ('beta = "500 mW"\n', "", "radio.beta", "missing"),
    "unknown radio key": (
        'beta = "500 mW"',
        'beta = "500 mW"\ntail = "1 J"',
        "radio.tail",
        "tail_energy",
    ),
    "device-only key": ('rtt = "30 ms"', 'rtt = "30 ms"\nkind = "edge"', "kind", "unknown key"),
    "tail without source": (
        'beta = "500 mW"',
        'beta = "500 mW"\ntail_energy = "2 J"',
        "radio.tail_energy",
        "no entry in [sources]",
    ),
    "list for a quantity": ('downlink = "20 Mbit/s"', "downlink = [20]", "downlink", "an array"),
}


@pytest.mark.parametrize("case", LINK_CASES, ids=str)
def test_bad_link_files(case: str, tmp_path: Path):
    old, new, field, fragment = LINK_CASES[case]
    path = tmp_path / "broken-link.toml"
    path.write_text(edited(LINK, old, new))
    assert_refused(lambda: validate_file(path), field=field, where=path, words=[fragment])


def test_sources_may_be_nested_tables(tmp_path: Path):
    """Unquoted dotted keys in [sources] make nested TOML tables; they count the same."""
    text = edited(DEVICE, '"memory.bandwidth" = "S: spec sheet"', "memory.bandwidth = 'S: x'")
    path = tmp_path / "nested.toml"
    path.write_text(text)
    assert load_device(path).sources["memory.bandwidth"] == "S: x"


def test_op_kinds_are_the_shared_vocabulary():
    assert devices.EFFICIENCY_KEYS == ("default", *OP_KINDS)


@pytest.mark.parametrize("index", [0, 1])
def test_readme_examples_are_valid_profiles(index: int, tmp_path: Path):
    """The format documentation shows files that the loader accepts."""
    readme = (Path(devices.__file__).resolve().parents[2] / "profiles" / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert len(blocks) == 2
    path = tmp_path / "example.toml"
    path.write_text(blocks[index])
    profile = validate_file(path)
    assert isinstance(profile, (DeviceProfile, LinkProfile)[index])
    assert profile.sources  # the example cites its figures
