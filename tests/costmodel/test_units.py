"""Quantities with units: hand-computed conversions and every promised error."""

from __future__ import annotations

import pytest

from dse.costmodel.units import BASE_UNITS, DIMENSIONS, UNITS, parse_quantity
from dse.errors import InputError


def q(value: object, dimension: str) -> float:
    return parse_quantity(value, dimension, where="dev.toml", field="memory.bandwidth")


@pytest.mark.parametrize(
    ("text", "dimension", "expected"),
    [
        ("48 GFLOP/s", "flop_rate", 48e9),
        ("1.28 TFLOP/s", "flop_rate", 1.28e12),
        ("472 GFLOPS", "flop_rate", 472e9),
        ("20 TOPS", "flop_rate", 20e12),
        ("5 GOPS", "flop_rate", 5e9),
        ("5.85 Mbit/s", "bit_rate", 5.85e6),
        ("5.85 Mbps", "bit_rate", 5.85e6),
        ("1.1 Mbit/s", "bit_rate", 1.1e6),
        ("100 kbps", "bit_rate", 1e5),
        ("1 Gbit/s", "bit_rate", 1e9),
        ("2 MB/s", "bit_rate", 16e6),  # bytes per second become 8 bits each
        ("5.6 GB/s", "byte_rate", 5.6e9),
        ("1 KiB/s", "byte_rate", 1024.0),
        ("2 GiB/s", "byte_rate", 2 * 2**30),
        ("21 ms", "time", 0.021),
        ("20 us", "time", 20e-6),
        ("20 µs", "time", 20e-6),
        ("3 ns", "time", 3e-9),
        ("2 min", "time", 120.0),
        ("1.6 W", "power", 1.6),
        ("1288.04 mW", "power", 1.28804),
        ("3 J", "energy", 3.0),
        ("5 pJ", "energy", 5e-12),
        ("4 GiB", "bytes", 4 * 2**30),
        ("4 GB", "bytes", 4e9),
        ("512 MiB", "bytes", 512 * 2**20),
        ("438.39 mW/Mbps", "power_per_rate", 0.43839),
        ("0.5 W/(Mbit/s)", "power_per_rate", 0.5),
        ("30 %", "ratio", 0.3),
        ("0.25", "ratio", 0.25),
        ("1e3 kB/s", "byte_rate", 1e6),
        ("  50   us ", "time", 50e-6),
        ("438.39 mW / Mbps", "power_per_rate", 0.43839),
        ("5.85Mbit/s", "bit_rate", 5.85e6),
    ],
)
def test_string_quantities_convert_to_base_units(text: str, dimension: str, expected: float):
    assert q(text, dimension) == pytest.approx(expected, rel=1e-15, abs=0)


def test_decimal_prefixes_round_once():
    """'50 us' must be exactly 5e-05, not 50 * 1e-06 = 4.9999999999999996e-05."""
    assert q("50 us", "time") == 5e-05
    assert q("438.39 mW/Mbps", "power_per_rate") == 0.43839
    assert q("5.85 Mbit/s", "bit_rate") == 5.85e6
    assert q("4 GiB", "bytes") == 4 * 2**30


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_bare_numbers_are_base_units(dimension: str):
    assert q(7, dimension) == 7.0
    assert q(0.5, dimension) == 0.5
    assert isinstance(q(7, dimension), float)


@pytest.mark.parametrize(
    ("dimension", "unit", "factor"),
    [(d, u, f) for d, table in UNITS.items() for u, f in table.items() if u],
)
def test_every_listed_unit_parses_to_its_factor(dimension: str, unit: str, factor: float):
    assert q(f"1 {unit}", dimension) == pytest.approx(factor, rel=1e-15)


def test_every_dimension_has_a_base_unit():
    assert set(BASE_UNITS) == set(DIMENSIONS)


def test_unknown_unit_names_file_field_and_known_units():
    with pytest.raises(InputError) as info:
        q("10 GB/fortnight", "byte_rate")
    err = info.value
    assert err.where == "dev.toml" and err.field == "memory.bandwidth"
    assert "unknown unit 'GB/fortnight'" in str(err)
    assert "GB/s" in str(err) and "MiB/s" in str(err) and "B/s" in str(err)
    assert str(err).startswith("dev.toml: memory.bandwidth: ")


def test_units_are_case_sensitive_bits_are_not_bytes():
    with pytest.raises(InputError, match="unknown unit 'Mbit/s' for byte_rate"):
        q("10 Mbit/s", "byte_rate")
    assert q("1 MB/s", "bit_rate") == 8 * q("1 Mbit/s", "bit_rate")


def test_string_without_unit_is_refused_for_dimensional_fields():
    with pytest.raises(InputError, match="has no unit"):
        q("21", "time")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (True, "a boolean"),
        ([1, 2], "an array"),
        ({"a": 1}, "a table"),
        (None, "NoneType"),
    ],
)
def test_wrong_types_are_refused(value: object, fragment: str):
    with pytest.raises(InputError) as info:
        q(value, "time")
    assert fragment in str(info.value)
    assert "dev.toml: memory.bandwidth:" in str(info.value)


@pytest.mark.parametrize("text", ["fast", "", "GB/s 5", "1.2.3 GB/s", "nan GB/s", "- 5 GB/s"])
def test_malformed_strings_are_refused(text: str):
    with pytest.raises(InputError) as info:
        q(text, "byte_rate")
    assert info.value.field == "memory.bandwidth"


def test_non_finite_values_are_refused():
    with pytest.raises(InputError, match="not a finite number"):
        q("1e999 W", "power")
    with pytest.raises(InputError, match="not a finite number"):
        q(float("inf"), "power")


def test_ratio_accepts_no_physical_unit():
    with pytest.raises(InputError, match="unknown unit 's' for ratio"):
        q("0.3 s", "ratio")


def test_unknown_dimension_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown dimension"):
        parse_quantity(1.0, "speed", where="x", field="y")
