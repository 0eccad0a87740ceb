"""The tables of a device or link profile file, parsed and checked into a profile.

One function per TOML table (``[compute]``, ``[compute.sparse_efficiency]``, ``[memory]``,
``[power]``, ``[codec]``, ``[predictor]``; a link's rates and ``[radio]``), each returning
the profile fields it gives; :func:`parse_device` and :func:`parse_link` read the tables in
the order the checks have always run, so the first error a file meets is the same.
"""

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
    SOURCED_LINK_FIELDS,
    SPARSE_PATTERNS,
    DeviceProfile,
    LinkProfile,
    codec_rate_error,
    pattern_error,
    unsourced_link_field,
)
from dse.costmodel.kinds import OP_KINDS
from dse.costmodel.predictor import KernelPredictor, sha256
from dse.costmodel.profile_reader import Reader, dotted, type_name

_MAP_TABLES = ("compute.peak_flops", "compute.efficiency", "compute.sparse_efficiency", "codec")


DEVICE_KEYS: tuple[str, ...] = (
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
)
"""The top-level keys every device profile has (``codec`` and ``predictor`` are optional)."""
LINK_KEYS: tuple[str, ...] = (
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
)
"""The top-level keys of a link profile."""


def parse_device(reader: Reader, data: dict[str, Any], path: Path) -> DeviceProfile:
    """A device profile from the parsed TOML ``data`` of the file at ``path``."""
    reader.keys(data, "", DEVICE_KEYS, ("codec", "predictor"))
    name, version, description, source = reader.header(data)
    kind = reader.string(data, "", "kind", choices=DEVICE_KINDS)
    compute = _compute(reader, reader.table(data, "", "compute"))
    memory = _memory(reader, reader.table(data, "", "memory"))
    power = _power(reader, reader.table(data, "", "power"))
    codec = _codec(reader, reader.table(data, "", "codec", optional=True))
    predictor = _predictor(reader, data, path, compute["runtime"])
    patterns = tuple(f"compute.sparse_efficiency.{p}" for p in compute["sparse_efficiency"])
    sources = reader.sources(data, tables=_MAP_TABLES + patterns)
    return DeviceProfile(
        name=name,
        version=version,
        kind=kind,
        description=description,
        source=source,
        path=path,
        **compute,
        **memory,
        **power,
        codec_Bps=codec,
        sources=sources,
        predictor=predictor,
    )


def _compute(reader: Reader, compute: Mapping[str, Any]) -> dict[str, Any]:
    """``[compute]``: runtime, peaks per dtype, the default dtype, overhead, efficiencies."""
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
    peak_flops = _peak_flops(reader, reader.table(compute, "compute", "peak_flops"))
    dtype = reader.string(compute, "compute", "dtype")
    if dtype not in peak_flops:
        raise reader.error(
            "compute.dtype",
            f"{dtype!r} has no peak in compute.peak_flops",
            f"one of: {', '.join(peak_flops)}",
        )
    overhead = reader.quantity(compute, "compute", "overhead", "time", "nonnegative")
    efficiency = _efficiency(reader, reader.table(compute, "compute", "efficiency"))
    sparse = _sparse_efficiency(
        reader, reader.table(compute, "compute", "sparse_efficiency", optional=True)
    )
    return {
        "runtime": runtime,
        "peak_flops": peak_flops,
        "dtype": dtype,
        "overhead_s": overhead,
        "efficiency": efficiency,
        "sparse_efficiency": sparse,
    }


def _peak_flops(reader: Reader, table: Mapping[str, Any]) -> dict[str, float]:
    """``[compute.peak_flops]``: FLOP/s per dtype, at least one."""
    if not table:
        raise reader.error("compute.peak_flops", "needs at least one dtype", "e.g. fp32 = ...")
    reader.keys(table, "compute.peak_flops", (), DTYPES)
    return {
        key: reader.quantity(table, "compute.peak_flops", key, "flop_rate", "positive")
        for key in table
    }


def _efficiency(reader: Reader, table: Mapping[str, Any]) -> dict[str, float]:
    """``[compute.efficiency]``: the fraction of peak per op kind, with a default."""
    if "default" not in table:
        raise reader.error(
            "compute.efficiency.default",
            "missing required field",
            "the efficiency of op kinds not listed, e.g. default = 0.2",
        )
    return _fractions(reader, table, "compute.efficiency", EFFICIENCY_KEYS)


def _sparse_efficiency(reader: Reader, table: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``[compute.sparse_efficiency]``: per sparsity pattern, the fraction of peak its
    kernels reach per op kind."""
    sparse: dict[str, dict[str, float]] = {}
    for pattern, kinds in table.items():
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
        sparse[pattern] = _fractions(reader, kinds, where, OP_KINDS)
    return sparse


def _fractions(
    reader: Reader, table: Mapping[str, Any], prefix: str, allowed: tuple[str, ...]
) -> dict[str, float]:
    """A table of fractions of peak by op kind (keys from ``allowed``)."""
    for key in table:
        if key not in allowed:
            reason = "not allowed here" if key == "default" else f"unknown op kind {key!r}"
            raise reader.error(dotted(prefix, key), reason, f"allowed: {', '.join(allowed)}")
    return {key: reader.quantity(table, prefix, key, "ratio", "fraction") for key in table}


def _memory(reader: Reader, memory: Mapping[str, Any]) -> dict[str, float]:
    """``[memory]``: sustained bandwidth and capacity."""
    reader.keys(memory, "memory", ("bandwidth", "capacity"))
    return {
        "mem_bandwidth_Bps": reader.quantity(
            memory, "memory", "bandwidth", "byte_rate", "positive"
        ),
        "mem_capacity_bytes": reader.quantity(memory, "memory", "capacity", "bytes", "positive"),
    }


def _power(reader: Reader, power: Mapping[str, Any]) -> dict[str, float | None]:
    """``[power]``: idle and active draw, and the optional per-FLOP and per-byte energies
    (both or neither)."""
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
    return {
        "idle_power_w": idle,
        "active_power_w": active,
        "energy_per_flop_j": per_flop,
        "energy_per_byte_j": per_byte,
    }


def _codec(reader: Reader, table: Mapping[str, Any]) -> dict[str, float]:
    """``[codec]``: the throughputs of the steps that code the tensor at a cut, B/s."""
    reader.keys(table, "codec", (), CODEC_RATES)
    codec: dict[str, float] = {}
    for key in table:
        value = reader.quantity(table, "codec", key, "byte_rate", "positive")
        if codec_rate_error(key, value):
            raise reader.error(
                f"codec.{key}",
                str(codec_rate_error(key, value)),
                'a byte rate such as "1.2 GB/s"; see profiles/README.md',
            )
        codec[key] = value
    return codec


def _predictor(
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
    """A link profile from the parsed TOML ``data`` of the file at ``path``."""
    reader.keys(data, "", LINK_KEYS)
    name, version, description, source = reader.header(data)
    uplink = reader.quantity(data, "", "uplink", "bit_rate", "positive")
    downlink = reader.quantity(data, "", "downlink", "bit_rate", "positive")
    rtt = reader.quantity(data, "", "rtt", "time", "nonnegative")
    radio = _radio(reader, reader.table(data, "", "radio"), uplink=uplink, downlink=downlink)
    sources = reader.sources(data, tables=())
    for key in SOURCED_LINK_FIELDS:
        why = unsourced_link_field(key, sources[key])
        if why is not None:
            raise reader.error(
                f'sources."{key}"',
                why,
                "cite what it rests on: a measurement (M:), a paper or dataset (S: or D:), a "
                "standard's rates (D/E: when applied to an estimated uplink); cellular "
                "downlinks are several times their uplinks, and a link that is symmetric "
                "says why",
            )
    return LinkProfile(
        name=name,
        version=version,
        description=description,
        source=source,
        path=path,
        uplink_bps=uplink,
        downlink_bps=downlink,
        rtt_s=rtt,
        **radio,
        sources=sources,
    )


def _radio(
    reader: Reader, radio: Mapping[str, Any], *, uplink: float, downlink: float
) -> dict[str, float]:
    """``[radio]``: the power model's slopes and intercept, the connected power and the
    tail energy; the power it gives at either rate must stay physical."""
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
    return {
        "alpha_w_per_mbps": alpha,
        "beta_w": beta,
        "tail_energy_j": tail,
        "alpha_down_w_per_mbps": alpha_down,
        "connected_power_w": connected,
    }
