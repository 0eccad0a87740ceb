"""What coding the tensors at a cut costs: profile [codec] tables, their defaults, the
closed forms of codec_seconds, and calibrate's measurement of the throughputs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from dse.costmodel import CODEC_RATES, codec_seconds, default_codec_rate, list_devices
from dse.costmodel.calibrate import measure_codecs
from dse.costmodel.costs import (
    PACK_TRAFFIC,
    UNPACK_TRAFFIC,
    CRC32_REFERENCE_Bps,
    framing_rates,
)
from dse.costmodel.devices import load_device, validate_file
from dse.errors import InputError

PI = Path(__file__).resolve().parents[2] / "profiles" / "devices" / "raspberry-pi-4.toml"
RATES = {"quantize": 1e9, "dequantize": 2e9, "zstd": 1e8, "unzstd": 4e8, "zlib": 1e7, "unzlib": 2e8}


def framing(d, coded: float, direction: str) -> float:  # noqa: ANN001
    """The payload's packing (or unpacking) and CRC32, by hand: memory bandwidth over the
    copies' traffic, zlib's crc32 on the reference core scaled by the profile's unzstd."""
    crc = CRC32_REFERENCE_Bps * d.codec_rate("unzstd") / 1660e6
    copy = d.mem_bandwidth_Bps / (PACK_TRAFFIC if direction == "encode" else UNPACK_TRAFFIC)
    return coded / crc + coded / copy


def test_codec_seconds_closed_forms(make_device):
    d = make_device(codec_Bps=RATES)
    raw = 1e6  # 1 MB of float32
    for dtype, frac in (("fp16", 0.5), ("bf16", 0.5), ("int8", 0.25), ("int4", 0.125)):
        coded = raw * frac + 40  # the body and a header
        enc = codec_seconds(
            d, dtype=dtype, lossless=None, raw_bytes=raw, coded_bytes=coded, direction="encode"
        )
        assert enc == pytest.approx(raw / 1e9 + framing(d, coded, "encode"))
        assert codec_seconds(
            d, dtype=dtype, lossless=None, raw_bytes=raw, coded_bytes=coded, direction="decode"
        ) == pytest.approx(raw / 2e9 + framing(d, coded, "decode"))
        small = coded / 3  # compressed
        for lossless, rate, unrate in (("zstd", 1e8, 4e8), ("zlib", 1e7, 2e8)):
            assert codec_seconds(
                d,
                dtype=dtype,
                lossless=lossless,
                raw_bytes=raw,
                coded_bytes=small,
                direction="encode",
            ) == pytest.approx(raw / 1e9 + raw * frac / rate + framing(d, small, "encode"))
            assert codec_seconds(
                d,
                dtype=dtype,
                lossless=lossless,
                raw_bytes=raw,
                coded_bytes=small,
                direction="decode",
            ) == pytest.approx(raw * frac / unrate + raw / 2e9 + framing(d, small, "decode"))
    assert codec_seconds(
        d, dtype="fp32", lossless="zstd", raw_bytes=raw, coded_bytes=5e5, direction="encode"
    ) == pytest.approx(raw / 1e8 + framing(d, 5e5, "encode"))
    assert codec_seconds(
        d, dtype="fp32", lossless="zlib", raw_bytes=raw, coded_bytes=5e5, direction="decode"
    ) == pytest.approx(raw / 2e8 + framing(d, 5e5, "decode"))


def test_fp32_pays_for_packing_and_checking_its_payload(make_device):
    """Float32 quantises and compresses nothing, but its payload is still built (three
    copies) and checksummed on the edge, checked and unpacked on the server: not 0 s."""
    d = make_device(codec_Bps=RATES)
    raw = 1e6
    coded = raw + 33
    for direction in ("encode", "decode"):
        seconds = codec_seconds(
            d, dtype="fp32", lossless=None, raw_bytes=raw, coded_bytes=coded, direction=direction
        )
        assert seconds == pytest.approx(framing(d, coded, direction)) and seconds > 0
    # on a shipped profile: its own memory bandwidth and its own core (from unzstd)
    pi = load_device("raspberry-pi-4")
    rates = framing_rates(pi)
    assert rates["pack"] == pytest.approx(5.6e9 / 6) and rates["unpack"] == pytest.approx(1.4e9)
    assert rates["crc32"] == pytest.approx(4e9 * 298.8e6 / 1660e6)  # x 0.18: 720 MB/s
    # a profile without [codec] figures gets the default core (0.15)
    assert framing_rates(make_device())["crc32"] == pytest.approx(4e9 * 0.15)


def test_codec_seconds_refuses_unknown_arguments(make_device):
    d = make_device()
    good = dict(dtype="int8", lossless=None, raw_bytes=1.0, coded_bytes=1.0, direction="encode")
    for bad in (
        dict(dtype="int3"),
        dict(lossless="lz4"),
        dict(direction="both"),
        dict(raw_bytes=-1.0),
        dict(coded_bytes=math.nan),
    ):
        with pytest.raises(ValueError):
            codec_seconds(d, **{**good, **bad})  # type: ignore[arg-type]


def test_defaults_follow_the_stated_rules(make_device):
    d = make_device(mem_bandwidth_Bps=6e9)  # no [codec] figures
    assert d.codec_rate("quantize") == 6e8 == default_codec_rate("quantize", 6e9)
    assert d.codec_rate("dequantize") == 1e9
    assert d.codec_rate("zstd") == pytest.approx(500e6 * 0.7 * 0.15)
    assert d.codec_rate("unzstd") == pytest.approx(1660e6 * 0.15)
    assert d.codec_rate("zlib") == pytest.approx(90e6 * 0.3 * 0.15)
    assert d.codec_rate("unzlib") == pytest.approx(400e6 * 0.15)
    partial = make_device(mem_bandwidth_Bps=6e9, codec_Bps={"zstd": 3e8})
    assert partial.codec_rate("zstd") == 3e8 and partial.codec_rate("quantize") == 6e8
    assert codec_seconds(
        d, dtype="int8", lossless="zstd", raw_bytes=6e8, coded_bytes=1, direction="encode"
    ) == pytest.approx(1.0 + 1.5e8 / (500e6 * 0.105))


def test_direct_construction_checks_codec_figures(make_device):
    for bad in ({"zstd": 0.0}, {"zstd": math.inf}, {"quantize": 1e15}, {"lz4": 1e8}):
        with pytest.raises(ValueError, match="codec"):
            make_device(codec_Bps=bad)
    with pytest.raises(TypeError):
        make_device(codec_Bps={"zstd": 1e8}).codec_Bps["zstd"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize("name", list_devices())
def test_every_shipped_profile_has_a_cited_codec_table(name: str):
    d = load_device(name)
    assert set(d.codec_Bps) == set(CODEC_RATES)
    for key in CODEC_RATES:
        assert 1e3 <= d.codec_rate(key) <= 2e13
        assert re.match(r"^[SDUEM](/[SDUEM])*:", d.sources[f"codec.{key}"])
    # decompression is faster than compression; dequantisation moves fewer bytes
    assert d.codec_rate("unzstd") > d.codec_rate("zstd")
    assert d.codec_rate("unzlib") > d.codec_rate("zlib")
    assert d.codec_rate("dequantize") > d.codec_rate("quantize")


@pytest.mark.parametrize(
    "line, says",
    [
        ('zstd = "0 MB/s"', "must be positive"),
        ('zstd = "-5 MB/s"', "must be positive"),
        ('zstd = "63 Mbit/s"', "unknown unit"),
        ('zstd = "63 MB"', "unknown unit"),
        ('zstd = "500 TB/s"', "not a plausible zstd throughput"),
        ('zstd = "0.5 B/s"', "not a plausible zstd throughput"),
        ('zstd = "inf MB/s"', "cannot read"),
        ("zstd = true", "expected a number"),
    ],
)
def test_a_bad_codec_value_names_the_file_and_field(line: str, says: str, tmp_path: Path):
    text = PI.read_text().replace('zstd = "63 MB/s"', line)
    assert text != PI.read_text()
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        validate_file(path)
    assert str(err.value).startswith(f"{path}: codec.zstd: ") and says in str(err.value)


def test_unknown_codec_key_and_missing_citation(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(PI.read_text().replace('zstd = "63 MB/s"', 'zstd = "63 MB/s"\nlz4 = "1 GB/s"'))
    with pytest.raises(InputError, match=r"codec\.lz4: unknown key .*quantize"):
        validate_file(path)
    text = "\n".join(
        ln for ln in PI.read_text().splitlines() if not ln.startswith('"codec.unzlib"')
    )
    path.write_text(text)
    with pytest.raises(InputError, match=r"codec\.unzlib: has no entry in \[sources\]"):
        validate_file(path)


def test_a_profile_without_codec_table_loads_with_defaults(tmp_path: Path):
    lines, skip = [], False
    for ln in PI.read_text().splitlines():
        if ln.startswith("["):
            skip = ln == "[codec]"
        if not skip and not ln.startswith('"codec.'):
            lines.append(ln)
    path = tmp_path / "plain.toml"
    path.write_text("\n".join(lines) + "\n")
    d = validate_file(path)
    assert not d.codec_Bps  # type: ignore[union-attr]
    assert d.codec_rate("quantize") == 5.6e9 / 10  # type: ignore[union-attr]


def test_calibrate_measures_positive_finite_codec_throughputs():
    rates = measure_codecs(mib=0.25, repeats=2, threads=1)
    assert tuple(rates) == CODEC_RATES
    for key, value in rates.items():
        assert math.isfinite(value) and 1e3 < value < 1e13, (key, value)
