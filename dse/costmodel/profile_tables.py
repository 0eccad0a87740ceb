"""The tables of a device or link profile file, parsed and checked into a profile."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dse.costmodel.devices import (
    CODEC_RATES,
    DEVICE_KINDS,
    DTYPES,
    EFFICIENCY_KEYS,
    FORMAT_HINT,
    RADIO_POWER_MAX_W,
    RUNTIMES,
    SPARSE_PATTERNS,
    DeviceProfile,
    LinkProfile,
    codec_rate_error,
    pattern_error,
)
from dse.costmodel.kinds import OP_KINDS
from dse.costmodel.predictor import KernelPredictor, sha256
from dse.costmodel.profile_reader import Reader, dotted, type_name

MAP_TABLES = ("compute.peak_flops", "compute.efficiency", "compute.sparse_efficiency", "codec")


def fractions(
    reader: Reader, table: Mapping[str, Any], prefix: str, allowed: tuple[str, ...]
) -> dict[str, float]:
    for key in table:
        if key not in allowed:
            reason = "not allowed here" if key == "default" else f"unknown op kind {key!r}"
            raise reader.error(dotted(prefix, key), reason, f"allowed: {', '.join(allowed)}")
    return {key: reader.quantity(table, prefix, key, "ratio", "fraction") for key in table}


def parse_device(reader: Reader, data: dict[str, Any], path: Path) -> DeviceProfile:
    reader.keys(
        data,
        "",
        (
            "type",
            "name",
            "version",
            "kind",
            "description",
            "source",
            "compute",
            "memory",
            "power",
            "sources",
        ),
        ("codec", "predictor"),
    )
    name, version, description, source = reader.header(data)
    kind = reader.string(data, "", "kind", choices=DEVICE_KINDS)

    compute = reader.table(data, "", "compute")
    reader.keys(
        compute,
        "compute",
        ("peak_flops", "dtype", "overhead", "efficiency"),
        ("sparse_efficiency", "runtime"),
    )
    runtime = (
        reader.string(compute, "compute", "runtime", choices=RUNTIMES)
        if "runtime" in compute
        else "fused"
    )
    peaks_table = reader.table(compute, "compute", "peak_flops")
    if not peaks_table:
        raise reader.error("compute.peak_flops", "needs at least one dtype", "e.g. fp32 = ...")
    reader.keys(peaks_table, "compute.peak_flops", (), DTYPES)
    peak_flops = {
        key: reader.quantity(peaks_table, "compute.peak_flops", key, "flop_rate", "positive")
        for key in peaks_table
    }
    dtype = reader.string(compute, "compute", "dtype")
    if dtype not in peak_flops:
        raise reader.error(
            "compute.dtype",
            f"{dtype!r} has no peak in compute.peak_flops",
            f"one of: {', '.join(peak_flops)}",
        )
    overhead = reader.quantity(compute, "compute", "overhead", "time", "nonnegative")
    efficiency_table = reader.table(compute, "compute", "efficiency")
    if "default" not in efficiency_table:
        raise reader.error(
            "compute.efficiency.default",
            "missing required field",
            "the efficiency of op kinds not listed, e.g. default = 0.2",
        )
    efficiency = fractions(reader, efficiency_table, "compute.efficiency", EFFICIENCY_KEYS)
    sparse: dict[str, dict[str, float]] = {}
    sparse_table = reader.table(compute, "compute", "sparse_efficiency", optional=True)
    for pattern, kinds in sparse_table.items():
        where = f"compute.sparse_efficiency.{pattern}"
        if not isinstance(kinds, dict):
            raise reader.error(
                where,
                f"expected a table of op kinds under a sparsity pattern, got {type_name(kinds)}",
                'name the pattern the kernels accelerate: [compute.sparse_efficiency."2:4"] '
                'conv = 0.3 (patterns: "N:M", ' + ", ".join(SPARSE_PATTERNS) + ")",
            )
        if pattern_error(pattern):
            raise reader.error(where, str(pattern_error(pattern)), FORMAT_HINT)
        sparse[pattern] = fractions(reader, kinds, where, OP_KINDS)

    memory = reader.table(data, "", "memory")
    reader.keys(memory, "memory", ("bandwidth", "capacity"))
    bandwidth = reader.quantity(memory, "memory", "bandwidth", "byte_rate", "positive")
    capacity = reader.quantity(memory, "memory", "capacity", "bytes", "positive")

    power = reader.table(data, "", "power")
    reader.keys(power, "power", ("idle", "active"), ("energy_per_flop", "energy_per_byte"))
    idle = reader.quantity(power, "power", "idle", "power", "nonnegative")
    active = reader.quantity(power, "power", "active", "power", "positive")
    if active < idle:
        raise reader.error(
            "power.active",
            f"{power['active']!r} is below power.idle {power['idle']!r}",
            "active power is the whole device's draw while computing",
        )
    per_flop = per_byte = None
    if ("energy_per_flop" in power) != ("energy_per_byte" in power):
        missing = "energy_per_byte" if "energy_per_flop" in power else "energy_per_flop"
        raise reader.error(
            f"power.{missing}",
            "missing: the energy model needs both per-FLOP and per-byte",
            "give both or neither",
        )
    if "energy_per_flop" in power:
        per_flop = reader.quantity(power, "power", "energy_per_flop", "energy", "positive")
        per_byte = reader.quantity(power, "power", "energy_per_byte", "energy", "positive")

    codec_table = reader.table(data, "", "codec", optional=True)
    reader.keys(codec_table, "codec", (), CODEC_RATES)
    codec: dict[str, float] = {}
    for key in codec_table:
        value = reader.quantity(codec_table, "codec", key, "byte_rate", "positive")
        if codec_rate_error(key, value):
            raise reader.error(
                f"codec.{key}",
                str(codec_rate_error(key, value)),
                'a byte rate such as "1.2 GB/s"; see profiles/README.md',
            )
        codec[key] = value

    predictor = predictor_sidecar(reader, data, path, runtime)
    pattern_tables = tuple(f"compute.sparse_efficiency.{p}" for p in sparse)
    sources = reader.sources(data, tables=MAP_TABLES + pattern_tables)
    return DeviceProfile(
        name=name,
        version=version,
        kind=kind,
        description=description,
        source=source,
        path=path,
        peak_flops=peak_flops,
        dtype=dtype,
        efficiency=efficiency,
        sparse_efficiency=sparse,
        overhead_s=overhead,
        mem_bandwidth_Bps=bandwidth,
        mem_capacity_bytes=capacity,
        idle_power_w=idle,
        active_power_w=active,
        energy_per_flop_j=per_flop,
        energy_per_byte_j=per_byte,
        codec_Bps=codec,
        sources=sources,
        runtime=runtime,
        predictor=predictor,
    )


def predictor_sidecar(
    reader: Reader, data: Mapping[str, Any], path: Path, runtime: str
) -> KernelPredictor | None:
    """The ``[predictor]`` sidecar: ``file`` (beside the profile) and its ``sha256``."""
    table = reader.table(data, "", "predictor", optional=True)
    if not table:
        return None
    reader.keys(table, "predictor", ("file", "sha256"))
    name = reader.string(table, "predictor", "file")
    digest = reader.string(table, "predictor", "sha256")
    sidecar = path.parent / name
    if not sidecar.is_file():
        raise reader.error(
            "predictor.file",
            f"no such file {str(sidecar)!r}",
            "keep the .predictor.json beside the profile, or remove [predictor]",
        )
    raw = sidecar.read_bytes()
    if sha256(raw) != digest:
        raise reader.error(
            "predictor.sha256",
            f"{name} does not match its sha256",
            "the sidecar was changed: calibrate again, or restore it",
        )
    try:
        predictor = KernelPredictor.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise reader.error(
            "predictor.file", f"{name}: {exc}", "write it with dse calibrate"
        ) from None
    if predictor.runtime != runtime:
        raise reader.error(
            "predictor.file",
            f"{name} is for runtime {predictor.runtime!r}, the profile for {runtime!r}",
            "set compute.runtime to the predictor's runtime",
        )
    return predictor


def parse_link(reader: Reader, data: dict[str, Any], path: Path) -> LinkProfile:
    reader.keys(
        data,
        "",
        (
            "type",
            "name",
            "version",
            "description",
            "source",
            "uplink",
            "downlink",
            "rtt",
            "radio",
            "sources",
        ),
    )
    name, version, description, source = reader.header(data)
    uplink = reader.quantity(data, "", "uplink", "bit_rate", "positive")
    downlink = reader.quantity(data, "", "downlink", "bit_rate", "positive")
    rtt = reader.quantity(data, "", "rtt", "time", "nonnegative")
    radio = reader.table(data, "", "radio")
    reader.keys(radio, "radio", ("alpha", "beta"), ("tail_energy", "alpha_down", "connected"))
    alpha = reader.quantity(radio, "radio", "alpha", "power_per_rate", "nonnegative")
    beta = reader.quantity(radio, "radio", "beta", "power", "nonnegative")
    alpha_down = connected = 0.0
    if "alpha_down" in radio:
        alpha_down = reader.quantity(radio, "radio", "alpha_down", "power_per_rate", "nonnegative")
    if "connected" in radio:
        connected = reader.quantity(radio, "radio", "connected", "power", "nonnegative")
    tail = 0.0
    if "tail_energy" in radio:
        tail = reader.quantity(radio, "radio", "tail_energy", "energy", "nonnegative")
    for direction, slope, rate in (("uplink", alpha, uplink), ("downlink", alpha_down, downlink)):
        radio_w = slope * rate / 1e6 + beta
        if not radio_w <= RADIO_POWER_MAX_W:
            field_name = "radio.alpha" if direction == "uplink" else "radio.alpha_down"
            raise reader.error(
                field_name,
                f"the radio would draw {radio_w:g} W at the {direction} rate "
                f"(alpha x Mbit/s + beta), above the physical bound {RADIO_POWER_MAX_W:g} W",
                'check alpha\'s unit: W per Mbit/s of throughput, e.g. "0.44 W/Mbps"',
            )
    sources = reader.sources(data, tables=())
    return LinkProfile(
        name=name,
        version=version,
        description=description,
        source=source,
        path=path,
        uplink_bps=uplink,
        downlink_bps=downlink,
        rtt_s=rtt,
        alpha_w_per_mbps=alpha,
        beta_w=beta,
        tail_energy_j=tail,
        alpha_down_w_per_mbps=alpha_down,
        connected_power_w=connected,
        sources=sources,
    )
