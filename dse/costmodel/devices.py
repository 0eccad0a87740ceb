"""Device and link profiles: versioned TOML data files, loaded and validated here.

A :class:`DeviceProfile` says how fast a device computes (peak FLOP/s per dtype, the
fraction of peak each op kind reaches, a per-layer dispatch overhead), how fast it moves
bytes, how much memory it has and how much power it draws. A :class:`LinkProfile` says
how fast a network link carries bits, its round-trip time and what the edge radio spends
to send them. The cost model (``costs.py``) reads nothing else about hardware.

Profiles are data, never code: every number is in a TOML file with a unit
(:mod:`dse.costmodel.units`) and a citation in ``[sources]`` stating whether it is stated by the
source (S), derived from sourced inputs (D), unconfirmed (U), an estimate (E) or measured
by the profile's author (M). ``profiles/README.md`` describes the format field by field.
Every check here raises :class:`~dse.errors.InputError` naming the file, the dotted field
and the fix.
"""

from __future__ import annotations

import functools
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dse.costmodel.kinds import OP_KINDS
from dse.costmodel.predictor import KernelPredictor
from dse.errors import InputError

#: The shipped profiles: ``profiles/devices/*.toml`` and ``profiles/links/*.toml``.
#: The environment variable ``DSE_PROFILES`` names another folder of the same layout.
PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"

DEVICE_KINDS: tuple[str, ...] = ("edge", "server")
#: Runtimes a profile's figures may be for (``[compute].runtime``); fusion follows it.
#: ``fused``: an optimising inference runtime in general (the default, and what the
#: datasheet profiles assume): a batch norm after a conv/linear is folded into its weights
#: and an activation after a conv, linear, norm or add runs in the same kernel
#: (``graph.fuse_nodes``). ``executorch-xnnpack`` and ``tensorrt`` fuse the same way.
#: ``eager`` (PyTorch eager) and ``torch-export`` (an exported program's graph, run op by
#: op) fuse nothing: every norm and activation is a kernel of its own, and masked sparse
#: weights are held dense (no sparse kernel, no per-layer expansion).
RUNTIMES: tuple[str, ...] = ("fused", "eager", "torch-export", "executorch-xnnpack", "tensorrt")
#: The runtimes that run every graph node as a kernel of its own.
#: Runtimes ``dse profile --measure`` and ``dse calibrate --runtime`` time on this machine.
TIMED_RUNTIMES: tuple[str, ...] = ("eager", "torch-export")
UNFUSED_RUNTIMES: frozenset[str] = frozenset(TIMED_RUNTIMES)
#: Number formats a profile may give a peak for (keys of ``[compute].peak_flops``).
DTYPES: tuple[str, ...] = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")
#: The floating-point formats of :data:`DTYPES`: a device whose ``peak_flops`` names none of
#: them computes integers only (an int8 accelerator such as the Edge TPU), and dse, which
#: trains and scores float32 networks, does not place a network's part on it
#: (:func:`check_runs_float`).
FLOAT_DTYPES: tuple[str, ...] = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8")
#: Keys of ``[compute.efficiency]``: an op kind or "default" (required).
EFFICIENCY_KEYS: tuple[str, ...] = ("default", *OP_KINDS)
#: Sparsity patterns a profile may name a sparse kernel for, besides ``"N:M"`` (at most N
#: nonzeros in every M consecutive input weights of a row, e.g. ``"2:4"``):
#: ``predefined`` a regular fan-in/fan-out pattern (every row and column keeps the same
#: count), ``unstructured`` any mask (a kernel for arbitrary sparse matrices).
SPARSE_PATTERNS: tuple[str, ...] = ("predefined", "unstructured")
_NM_RE = re.compile(r"^([1-9][0-9]*):([1-9][0-9]*)$")

#: Keys of a profile's optional ``[codec]`` table: throughputs, in bytes per second, of
#: the steps that code the tensor at a cut. ``quantize``: float32 bytes read per second
#: while converting to fp16/bf16/int8/int4 (min/max pass included); ``dequantize``: float32
#: bytes written per second while converting back; ``zstd`` / ``zlib``: bytes of the
#: quantised body compressed per second (zstd level 3, zlib level 6, one thread);
#: ``unzstd`` / ``unzlib``: bytes of quantised body produced per second by decompression.
CODEC_RATES: tuple[str, ...] = ("quantize", "dequantize", "zstd", "unzstd", "zlib", "unzlib")
#: Plausible bounds of a codec throughput, B/s: below 1 kB/s or above 20 TB/s (ten times
#: the fastest memory of any shipped device) a figure is a unit slip, not a measurement.
CODEC_RATE_BOUNDS: tuple[float, float] = (1e3, 2e13)
#: Bytes of memory traffic per float32 byte of the default rule, for eager PyTorch, one
#: pass per operation: a quantiser reads the input for min/max (1), then subtracts,
#: divides, rounds and clamps (read + write each, 8) and casts (read 1, write 1/4):
#: ~10.25, taken as 10; a dequantiser casts (read 1/4, write 1), multiplies and adds
#: (read + write each, 4): ~5.25, taken as 6. A fused kernel moves 2.5 and 1.5: the rule
#: is conservative for it, and `dse calibrate` replaces it with a measurement (on a shared
#: 2-core cloud VM, eager int8 quantisation of 4 MiB reached 1/10 to 1/40 of its STREAM
#: figure from run to run).
QUANTIZE_TRAFFIC = 10.0
DEQUANTIZE_TRAFFIC = 6.0
#: The reference for lossless coders without a ``[codec]`` figure: the zstd README's
#: lzbench table on a Core i9-9900K @ 5.0 GHz (zstd 1.4.5 -1: 500 MB/s compress, 1660 MB/s
#: decompress; zlib 1.2.11 -1: 90 MB/s, 400 MB/s), one thread, Silesia corpus.
LOSSLESS_REFERENCE_Bps: Mapping[str, float] = MappingProxyType(
    {"zstd": 500e6, "unzstd": 1660e6, "zlib": 90e6, "unzlib": 400e6}
)
#: Level factors to the levels dse uses (zstd 3, zlib 6) from level 1: zstd -3 compresses
#: at ~0.7 of -1 (estimate); zlib -6 at 0.3 of -1 (21 vs 70 MB/s in the zstd README's first
#: fsbench table, Core i7-5600U); decompression is level independent.
LOSSLESS_LEVEL_FACTOR: Mapping[str, float] = MappingProxyType(
    {"zstd": 0.7, "unzstd": 1.0, "zlib": 0.3, "unzlib": 1.0}
)
#: A conservative core for the default: 0.15 of the reference core, about a Cortex-A57
#: at 1.4 GHz (clock 0.28 x instructions per cycle ~0.55; estimate), the slowest shipped CPU.
DEFAULT_CORE_FACTOR = 0.15


def default_codec_rate(key: str, mem_bandwidth_Bps: float) -> float:
    """The throughput, B/s, a device without a ``[codec]`` figure for ``key`` is given.

    ``quantize`` = memory bandwidth / :data:`QUANTIZE_TRAFFIC` (10) and ``dequantize`` =
    memory bandwidth / :data:`DEQUANTIZE_TRAFFIC` (6): memory-bound eager passes. The
    lossless coders run on one CPU core whatever the device: the reference figure
    (:data:`LOSSLESS_REFERENCE_Bps`) x the level factor (:data:`LOSSLESS_LEVEL_FACTOR`) x
    :data:`DEFAULT_CORE_FACTOR` (0.15), e.g. zstd 500 MB/s x 0.7 x 0.15 = 52.5 MB/s.
    """
    if key == "quantize":
        return mem_bandwidth_Bps / QUANTIZE_TRAFFIC
    if key == "dequantize":
        return mem_bandwidth_Bps / DEQUANTIZE_TRAFFIC
    if key not in LOSSLESS_REFERENCE_Bps:
        raise ValueError(f"unknown codec throughput {key!r}; known: {', '.join(CODEC_RATES)}")
    return LOSSLESS_REFERENCE_Bps[key] * LOSSLESS_LEVEL_FACTOR[key] * DEFAULT_CORE_FACTOR


def codec_rate_error(key: str, value: float) -> str | None:
    """Why ``value`` B/s is not a plausible throughput for ``[codec].key``, or None."""
    if key not in CODEC_RATES:
        return f"unknown codec throughput {key!r}: one of {', '.join(CODEC_RATES)}"
    low, high = CODEC_RATE_BOUNDS
    if not (isinstance(value, int | float) and math.isfinite(value) and low <= value <= high):
        return (
            f"{value!r} B/s is not a plausible {key} throughput: it must lie between "
            f"{low:g} B/s (1 kB/s) and {high:g} B/s (20 TB/s)"
        )
    return None


def parse_nm(pattern: str) -> tuple[int, int] | None:
    """``(N, M)`` of an ``"N:M"`` pattern name, or None for any other name."""
    m = _NM_RE.match(pattern)
    return (int(m.group(1)), int(m.group(2))) if m else None


def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` is not a sparsity pattern name, or None if it is one."""
    if pattern in SPARSE_PATTERNS:
        return None
    nm = parse_nm(pattern)
    if nm is None:
        return (
            f'unknown sparsity pattern {pattern!r}: use "N:M" (e.g. "2:4") or one of '
            f"{', '.join(SPARSE_PATTERNS)}"
        )
    if nm[0] >= nm[1]:
        return f"pattern {pattern!r} keeps every weight: N must be below M"
    return None


#: Status letters a citation in ``[sources]`` starts with, as in docs REFERENCES.md.
SOURCE_STATUS: Mapping[str, str] = MappingProxyType(
    {
        "S": "stated by the source named",
        "D": "derived by arithmetic from sourced inputs (write the arithmetic out)",
        "U": "widely repeated but not confirmed from a primary source",
        "E": "estimate; calibrate with measurements",
        "M": "measured by the profile's author (say how)",
    }
)
#: Fields of a link profile whose citation must rest on a source: a status other than E
#: alone (an estimate may join a sourced rule, as ``D/E:`` does). The downlink decides how
#: fast split training's gradient comes back, and cellular links are asymmetric (HSPA,
#: LTE and 5G downlinks are several times their uplinks): a downlink assumed equal to the
#: uplink made split training look twice as slow as it is on them.
SOURCED_LINK_FIELDS: tuple[str, ...] = ("downlink",)


def source_status(citation: str) -> frozenset[str]:
    """The status letters a ``[sources]`` citation starts with: ``"D/U: ..."`` gives
    {"D", "U"}; a citation without a status gives none."""
    head, colon, _ = citation.partition(":")
    if not colon:
        return frozenset()
    letters = [x.strip() for x in head.split("/")]
    return frozenset(x for x in letters if x in SOURCE_STATUS)


def unsourced_link_field(key: str, citation: str) -> str | None:
    """Why a link's ``key`` (one of :data:`SOURCED_LINK_FIELDS`) with this citation is not
    sourced, or None when it is."""
    status = source_status(citation)
    if key in SOURCED_LINK_FIELDS and status <= {"E"}:
        return f"the {key} is an estimate (E:) with no source behind it"
    return None


#: Physical bounds of a profile's figures, in SI base units, by dotted field (a peak of
#: any dtype under ``compute.peak_flops``): (low, high, unit, the devices that set them).
#: They admit every shipped profile and every real device from a microcontroller (an 8-bit
#: AVR: ~1 MFLOP/s in software, 2 KiB of SRAM, ~1 mW) to a datacentre GPU or a whole
#: multi-GPU server (~1e16 FLOP/s, 8 TB/s of HBM, ~15 kW), with a margin of 1000x or more
#: where a figure can vary that much; a figure outside them is a unit slip (a GFLOP/s
#: written as FLOP/s, W as mW) or a number that would overflow the cost model.
PHYSICAL_BOUNDS: Mapping[str, tuple[float, float, str, str]] = MappingProxyType(
    {
        "compute.peak_flops": (1e3, 1e18, "FLOP/s", "1 kFLOP/s to 1 EFLOP/s"),
        "compute.overhead": (0.0, 60.0, "s", "0 to 60 s per layer"),
        "memory.bandwidth": (1e3, 1e17, "B/s", "1 kB/s to 100 PB/s"),
        "memory.capacity": (1e3, 1e16, "B", "1 kB to 10 PB"),
        "power.idle": (0.0, 1e5, "W", "0 to 100 kW"),
        "power.active": (1e-6, 1e5, "W", "1 uW to 100 kW"),
        "power.energy_per_flop": (1e-16, 1e-3, "J", "0.1 fJ to 1 mJ per FLOP"),
        "power.energy_per_byte": (1e-16, 1e-3, "J", "0.1 fJ to 1 mJ per byte"),
        "uplink": (1.0, 1e13, "bit/s", "1 bit/s to 10 Tbit/s"),
        "downlink": (1.0, 1e13, "bit/s", "1 bit/s to 10 Tbit/s"),
        "rtt": (0.0, 60.0, "s", "0 to 60 s"),
        "radio.alpha": (0.0, 1e4, "W/Mbps", "0 to 10 kW per Mbit/s"),
        "radio.alpha_down": (0.0, 1e4, "W/Mbps", "0 to 10 kW per Mbit/s"),
        "radio.beta": (0.0, 1e5, "W", "0 to 100 kW"),
        "radio.connected": (0.0, 1e5, "W", "0 to 100 kW"),
        "radio.tail_energy": (0.0, 1e4, "J", "0 to 10 kJ"),
    }
)
#: The most a radio may draw while sending or receiving (alpha x Mbit/s + beta), W.
RADIO_POWER_MAX_W = 1e5


def physical_bound_error(field_name: str, value: float) -> str | None:
    """Why ``value`` (SI base units) is outside :data:`PHYSICAL_BOUNDS` of the dotted
    ``field_name``, or None (also for a field without bounds)."""
    key = "compute.peak_flops" if field_name.startswith("compute.peak_flops.") else field_name
    if key not in PHYSICAL_BOUNDS:
        return None
    low, high, unit, text = PHYSICAL_BOUNDS[key]
    if low <= value <= high:
        return None
    return f"{value:g} {unit} is outside the physical bounds {text} ({low:g}..{high:g} {unit})"


FORMAT_HINT = "see profiles/README.md for the format"
"""The fix of an error about a profile file's format."""


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy, so a frozen profile cannot be changed through its tables."""
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class DeviceProfile:
    """What the cost model knows about one device, in SI units.

    Latency of a layer is ``max(flops / (peak * eff(kind)), bytes / mem_bandwidth_Bps)
    + overhead_s``; its energy is ``active_power_w * latency`` unless the profile gives
    ``energy_per_flop_j`` and ``energy_per_byte_j``.
    """

    name: str
    version: int
    kind: str  # "edge" | "server"
    description: str
    source: str
    path: Path | None
    #: Peak FLOP/s per dtype, e.g. {"fp32": 48e9}. One FLOP = one multiply or one add.
    peak_flops: Mapping[str, float] = field(hash=False)
    #: The dtype the cost model uses by default; a key of ``peak_flops``.
    dtype: str
    #: Fraction of peak reached per op kind; "default" covers kinds not listed.
    efficiency: Mapping[str, float] = field(hash=False)
    #: Sparse kernels by the sparsity pattern they accelerate (:data:`SPARSE_PATTERNS`, or
    #: ``"N:M"``) -> op kind -> fraction of peak reached on the FLOPs the kernel executes
    #: (the nonzero ones; ``N/M`` of the dense ones for an ``N:M`` kernel). A layer gets a
    #: sparse kernel only when its own pattern is one of these (see costs.py). Empty: no
    #: sparse kernels, sparsity saves storage but no time.
    sparse_efficiency: Mapping[str, Mapping[str, float]] = field(hash=False)
    #: Per-layer launch/dispatch overhead, s.
    overhead_s: float
    #: Sustained memory bandwidth, bytes/s.
    mem_bandwidth_Bps: float
    #: Memory the model may use, bytes.
    mem_capacity_bytes: float
    #: Whole-device power when idle and when computing, W.
    idle_power_w: float
    active_power_w: float
    #: Optional alternative energy model, J per FLOP and J per byte moved.
    energy_per_flop_j: float | None = None
    energy_per_byte_j: float | None = None
    #: Codec throughputs the profile gives, B/s, by :data:`CODEC_RATES` key (its
    #: ``[codec]`` table; may be partial or empty). Read them through :meth:`codec_rate`,
    #: which fills a missing one by :func:`default_codec_rate`.
    codec_Bps: Mapping[str, float] = field(default_factory=dict, hash=False)
    #: Dotted field name -> citation with its S/D/U/E/M status.
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: The runtime the figures are for (:data:`RUNTIMES`); it decides fusion.
    runtime: str = "fused"
    #: Fitted per-kind kernel latency models (``[predictor]`` sidecar); None: roofline.
    predictor: KernelPredictor | None = field(default=None, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        for name in ("peak_flops", "efficiency", "codec_Bps", "sources"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        sparse: dict[str, Mapping[str, float]] = {}
        for pattern, table in self.sparse_efficiency.items():
            if not isinstance(table, Mapping):
                raise ValueError(
                    f"sparse_efficiency maps a sparsity pattern to a table of op kinds, got "
                    f"{pattern!r} = {table!r}; e.g. {{'2:4': {{'conv': 0.3}}}}"
                )
            if pattern_error(pattern):
                raise ValueError(f"sparse_efficiency: {pattern_error(pattern)}")
            sparse[pattern] = _frozen(table)
        object.__setattr__(self, "sparse_efficiency", _frozen(sparse))
        if self.kind not in DEVICE_KINDS:
            raise ValueError(f"kind must be one of {DEVICE_KINDS}, got {self.kind!r}")
        if self.dtype not in self.peak_flops:
            raise ValueError(f"dtype {self.dtype!r} has no entry in peak_flops")
        if "default" not in self.efficiency:
            raise ValueError("efficiency needs a 'default' entry")
        for table in (self.efficiency, *self.sparse_efficiency.values()):
            for kind, value in table.items():
                if not 0.0 < value <= 1.0:
                    raise ValueError(f"efficiency of {kind!r} must lie in (0, 1], got {value}")
        if min(self.peak_flops.values()) <= 0 or self.mem_bandwidth_Bps <= 0:
            raise ValueError("peak FLOP/s and memory bandwidth must be positive")
        for key, value in self.codec_Bps.items():
            if codec_rate_error(key, value):
                raise ValueError(f"codec_Bps: {codec_rate_error(key, value)}")

    def codec_rate(self, key: str) -> float:
        """Throughput of codec step ``key`` (:data:`CODEC_RATES`), B/s: the profile's
        ``[codec]`` figure, else :func:`default_codec_rate` from its memory bandwidth."""
        if key in self.codec_Bps:
            return self.codec_Bps[key]
        return default_codec_rate(key, self.mem_bandwidth_Bps)

    @property
    def fuses(self) -> bool:
        """Whether the runtime fuses norms and activations into their producer's kernel."""
        return self.runtime not in UNFUSED_RUNTIMES

    def eff(self, kind: str) -> float:
        """Fraction of peak that layers of op kind ``kind`` reach; "default" if unlisted."""
        return self.efficiency.get(kind, self.efficiency["default"])

    def sparse_eff(self, kind: str, pattern: str) -> float | None:
        """Fraction of peak of the kernel for ``pattern`` on op kind ``kind``; None if the
        profile names no such kernel."""
        return self.sparse_efficiency.get(pattern, {}).get(kind)

    def sparse_kernels(self, kind: str) -> dict[str, float]:
        """Pattern -> efficiency of every sparse kernel this device has for ``kind``."""
        return {p: t[kind] for p, t in self.sparse_efficiency.items() if kind in t}

    @property
    def peak(self) -> float:
        """Peak FLOP/s in the default dtype."""
        return self.peak_flops[self.dtype]

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The number formats the device computes in: the keys of ``peak_flops``."""
        return tuple(self.peak_flops)

    @property
    def integer_only(self) -> bool:
        """True when the device declares no floating-point format (int8-only hardware)."""
        return not any(d in FLOAT_DTYPES for d in self.peak_flops)


def check_runs_float(device: DeviceProfile, role: str) -> None:
    """Refuse an integer-only device (:attr:`DeviceProfile.integer_only`) as ``role``.

    dse trains float32 networks and measures their accuracy in float32 (a codec at the cut
    quantises only the tensors sent). On int8-only hardware every layer of the part it runs
    must be quantised, which changes the accuracy dse reports and the bytes it counts, so
    pricing a float part there at the int8 peak would flatter it: it is refused instead,
    naming the profile file, ``compute.peak_flops`` and the fix.
    """
    if not device.integer_only:
        return
    raise InputError(
        device.path or device.name,
        "compute.peak_flops",
        f"{device.name} computes {', '.join(device.dtypes)} only, and dse places float32 "
        f"networks; it cannot be the {role} of a split whose part it would run unquantised",
        f"choose a device with a floating-point peak as the {role} (dse devices list)",
    )


@dataclass(frozen=True)
class LinkProfile:
    """What the cost model knows about one network link, in SI units.

    Sending ``b`` bytes up and getting ``r`` bytes back takes ``8 b / uplink_bps + rtt_s +
    8 r / downlink_bps`` seconds. The edge radio draws ``alpha_w_per_mbps * uplink_mbps +
    beta_w`` watts while it sends and ``alpha_down_w_per_mbps * downlink_mbps + beta_w``
    while it receives (Huang et al., MobiSys 2012), ``connected_power_w`` while it waits
    for the answer (connected, neither sending nor receiving), plus ``tail_energy_j`` once
    per exchange.
    """

    name: str
    version: int
    description: str
    source: str
    path: Path | None
    #: Effective throughput edge -> server and server -> edge, bit/s.
    uplink_bps: float
    downlink_bps: float
    #: Round-trip time, s.
    rtt_s: float
    #: Radio power slope (W per Mbit/s of uplink throughput) and intercept (W).
    alpha_w_per_mbps: float
    beta_w: float
    #: Energy spent in the radio's high-power tail after a transfer, J.
    tail_energy_j: float = 0.0
    #: Radio power slope while receiving (W per Mbit/s of downlink throughput).
    alpha_down_w_per_mbps: float = 0.0
    #: Radio power while connected and waiting (between sending and receiving), W.
    connected_power_w: float = 0.0
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", _frozen(self.sources))
        if self.uplink_bps <= 0 or self.downlink_bps <= 0:
            raise ValueError("uplink and downlink must be positive")
        if (
            min(
                self.rtt_s,
                self.alpha_w_per_mbps,
                self.beta_w,
                self.tail_energy_j,
                self.alpha_down_w_per_mbps,
                self.connected_power_w,
            )
            < 0
        ):
            raise ValueError("rtt, radio powers and tail energy must not be negative")

    @property
    def uplink_mbps(self) -> float:
        """Uplink throughput in Mbit/s, the unit of the radio power model."""
        return self.uplink_bps / 1e6

    def uplink_power_w(self) -> float:
        """Radio power while sending at the uplink throughput, W: alpha * Mbit/s + beta."""
        return self.alpha_w_per_mbps * self.uplink_mbps + self.beta_w

    def downlink_power_w(self) -> float:
        """Radio power while receiving at the downlink throughput, W:
        alpha_down * Mbit/s + beta."""
        return self.alpha_down_w_per_mbps * self.downlink_bps / 1e6 + self.beta_w


Profile = DeviceProfile | LinkProfile


# --- registry -------------------------------------------------------------------------


def profiles_dir() -> Path:
    """The folder of shipped profiles: ``$DSE_PROFILES`` if set, else :data:`PROFILES_DIR`."""
    override = os.environ.get("DSE_PROFILES")
    return Path(override).expanduser() if override else PROFILES_DIR


def _names(folder: str) -> list[str]:
    directory = profiles_dir() / folder
    return sorted(p.stem for p in directory.glob("*.toml")) if directory.is_dir() else []


def list_devices() -> list[str]:
    """Names of the shipped device profiles, sorted."""
    return _names("devices")


def list_links() -> list[str]:
    """Names of the shipped link profiles, sorted."""
    return _names("links")


def load_device(name_or_path: str | Path) -> DeviceProfile:
    """A device profile by shipped name (``"raspberry-pi-4"``) or by path to a TOML file."""
    return _load_typed(name_or_path, DeviceProfile, "device", "link")


def load_link(name_or_path: str | Path) -> LinkProfile:
    """A link profile by shipped name (``"lte"``) or by path to a TOML file."""
    return _load_typed(name_or_path, LinkProfile, "link", "device")


def _load_typed(name_or_path: str | Path, cls: type[Any], what: str, other: str) -> Any:
    profile = _load_file(_resolve(name_or_path, what))
    if not isinstance(profile, cls):
        raise InputError(
            profile.path or name_or_path,
            "type",
            f"this is a {other} profile, not a {what}",
            f'give a file with type = "{what}"',
        )
    return profile


def validate_file(path: str | Path) -> Profile:
    """Load and check any profile file; its top-level ``type`` decides device or link."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(path, "<file>", "no such file", "give the path to a profile .toml")
    return _load_file(path)


def _resolve(name_or_path: str | Path, what: str) -> Path:
    """A user path as is; a bare name looked up in the shipped folder of ``what``."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or os.sep in text or text.endswith(".toml"):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise InputError(path, "<file>", "no such file", f"give a {what} profile .toml")
        return path
    folder = profiles_dir() / f"{what}s"
    known = _names(f"{what}s")
    if text not in known:
        raise InputError(
            folder,
            "name",
            f"unknown {what} {text!r}",
            f"known {what}s: {', '.join(known) or '(none)'}; or give a path to a .toml file",
        )
    return folder / f"{text}.toml"


def _load_file(path: Path) -> Profile:
    """Load through a cache keyed on the resolved path and its modification time, and on
    those of the predictor sidecars beside it (an edited sidecar is checked again)."""
    resolved = path.resolve()
    sidecars = tuple(
        sorted(
            (p.name, p.stat().st_mtime_ns, p.stat().st_size)
            for p in resolved.parent.glob("*.predictor.json")
        )
    )
    return _load_cached(resolved, resolved.stat().st_mtime_ns, sidecars, str(path))


@functools.lru_cache(maxsize=256)
def _load_cached(
    resolved: Path, mtime_ns: int, sidecars: tuple[tuple[str, int, int], ...], shown: str
) -> Profile:
    del mtime_ns, sidecars  # part of the cache key only: an edited file is read again
    try:
        with resolved.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(shown, "<toml>", f"not valid TOML: {exc}", FORMAT_HINT) from None
    except UnicodeDecodeError as exc:
        raise InputError(shown, "<toml>", f"not UTF-8 text: {exc}", FORMAT_HINT) from None
    # The parsers build the profile classes of this module: imported here, not above.
    from dse.costmodel.profile_reader import Reader
    from dse.costmodel.profile_tables import parse_device, parse_link

    reader = Reader(shown)
    kind = reader.string(data, "", "type", choices=("device", "link"))
    if kind == "device":
        return parse_device(reader, data, resolved)
    return parse_link(reader, data, resolved)


def describe(profile: Profile) -> str:
    """A human-readable listing of a profile: every field with its unit and its source."""
    from dataclasses import fields as dc_fields

    lines = [
        f"{profile.name} v{profile.version}: {profile.description}",
        f"  source: {profile.source}",
    ]
    if profile.path is not None:
        lines.append(f"  file: {profile.path}")
    for f in dc_fields(profile):
        if f.name in ("name", "version", "description", "source", "path", "sources"):
            continue
        value = getattr(profile, f.name)
        if isinstance(value, Mapping):
            value = (
                ", ".join(
                    f"{k}=({', '.join(f'{a}={b:g}' for a, b in v.items())})"
                    if isinstance(v, Mapping)
                    else f"{k}={v:g}"
                    for k, v in value.items()
                )
                or "-"
            )
        lines.append(f"  {f.name:20s} {value}")
    if profile.sources:
        lines.append("  sources:")
        lines.extend(f"    {k}: {v}" for k, v in profile.sources.items())
    return "\n".join(lines)
