"""Tests for dse.nets.cache: stable keys, bit-exact round trips, corruption handling, safe loads."""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from dse.nets import cache as C
from dse.nets.cache import MAGIC, Cache, atomic_write_bytes, key_of

BASE_FIELDS: dict[str, Any] = {
    "model": "mlp",
    "model_options": {"widths": [32, 16]},
    "data": "digits(v1,seed=0)",
    "task": "digit",
    "method": "predefined",
    "density": 0.25,
    "exits": "all",
    "train": {"epochs": 2, "lr": 0.003, "seed": 0},
}


# --------------------------------------------------------------------------- keys


def test_key_is_a_stable_sha256() -> None:
    key = key_of(BASE_FIELDS)
    assert len(key) == 64 and int(key, 16) >= 0
    assert key_of(BASE_FIELDS) == key
    # Dict insertion order does not matter, at any depth.
    shuffled = {k: BASE_FIELDS[k] for k in reversed(list(BASE_FIELDS))}
    shuffled["train"] = {"seed": 0, "lr": 0.003, "epochs": 2}
    assert key_of(shuffled) == key
    # Golden value: a change of the canonical form (which would orphan every stored entry)
    # must come with a SCHEMA bump, and then this value is updated on purpose.
    canonical = b'{"a":1,"b":[1.5,"x"],"schema":2}'
    assert key_of({"b": [1.5, "x"], "a": 1}) == hashlib.sha256(canonical).hexdigest()
    assert C.SCHEMA == 2


def _variants() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for name, value in BASE_FIELDS.items():
        changed = dict(BASE_FIELDS)
        if isinstance(value, dict):
            inner = dict(value)
            k = next(iter(inner))
            inner[k] = [1] if isinstance(inner[k], list) else inner[k] + 1
            changed[name] = inner
        elif isinstance(value, float):
            changed[name] = value / 2
        else:
            changed[name] = f"{value}-other"
        out.append((name, changed))
    added = dict(BASE_FIELDS, extra=None)
    out.append(("extra field", added))
    dropped = {k: v for k, v in BASE_FIELDS.items() if k != "exits"}
    out.append(("dropped field", dropped))
    return out


@pytest.mark.parametrize(("what", "fields"), _variants(), ids=[v[0] for v in _variants()])
def test_key_changes_with_any_field(what: str, fields: dict[str, Any]) -> None:
    assert key_of(fields) != key_of(BASE_FIELDS), what


def test_all_variant_keys_are_distinct() -> None:
    keys = {key_of(f) for _, f in _variants()} | {key_of(BASE_FIELDS)}
    assert len(keys) == len(_variants()) + 1


# --------------------------------------------------------------------------- round trip


def _bits(t: torch.Tensor) -> bytes:
    """The raw bytes of a tensor (so NaN payloads and -0.0 compare exactly)."""
    return bytes(t.detach().contiguous().reshape(-1).view(torch.uint8).tolist())


def _payload(key: str) -> dict[str, Any]:
    g = torch.Generator().manual_seed(7)
    special = torch.tensor([math.nan, -0.0, 0.0, math.inf, -math.inf, 1e-45, 3.4e38, -1.0])
    return {
        "key": key,
        "state": {
            "layers.0.weight": torch.randn(5, 7, generator=g),
            "layers.0.weight_mask": torch.rand(5, 7, generator=g) < 0.5,
            "layers.0.weight_mask_seed": torch.tensor(2**62 + 3, dtype=torch.int64),
            "bn.num_batches_tracked": torch.tensor(17),
            "half": torch.randn(3, generator=g).to(torch.bfloat16),
            "double": torch.randn(4, dtype=torch.float64, generator=g),
            "bytes": torch.arange(256, dtype=torch.uint8),
        },
        "special": special,
        "val_logits": torch.randn(3, 11, 10, generator=g),
        "exit_sites": ["layers.0", "layers.1"],
        "train_seconds": 1.25,
        "history": [{"epoch": 1, "loss": 2.5, "val_accuracy": 0.1}],
        "fields": "{'model': 'mlp'}",
    }


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor)
        assert (a.dtype, a.shape) == (b.dtype, b.shape)
        assert _bits(a) == _bits(b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert type(a) is type(b) and a == b


def test_put_get_round_trip_is_bit_exact(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    key = key_of(BASE_FIELDS)
    payload = _payload(key)
    path = cache.put(key, payload)
    assert path == tmp_path / key[:2] / f"{key}.dse" and path.is_file()
    assert cache.keys() == [key]
    got = cache.get(key)
    assert got is not None
    _assert_same(payload, got)
    # A NaN stays the very same NaN and -0.0 keeps its sign.
    assert torch.isnan(got["special"][0]) and torch.signbit(got["special"][1])
    # A second read gives the same again (a hit does not consume or move the entry).
    _assert_same(payload, cache.get(key))
    assert path.is_file()


def test_miss_returns_none_and_creates_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "nested")
    assert cache.get(key_of(BASE_FIELDS)) is None
    assert not (tmp_path / "nested").exists()
    assert cache.keys() == []


def test_put_overwrites_an_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    key = key_of(BASE_FIELDS)
    cache.put(key, {"key": key, "x": torch.zeros(2)})
    cache.put(key, {"key": key, "x": torch.ones(2)})
    got = cache.get(key)
    assert got is not None and torch.equal(got["x"], torch.ones(2))
    assert sorted(p.name for p in (tmp_path / key[:2]).iterdir()) == [f"{key}.dse"]


def test_default_root_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DSE_CACHE", str(tmp_path / "env-cache"))
    assert Cache().root == tmp_path / "env-cache"
    monkeypatch.delenv("DSE_CACHE")
    assert Cache().root == Path(".dse-cache")


# --------------------------------------------------------------------------- corruption


def _flip_payload_byte(raw: bytes) -> bytes:
    i = len(raw) - 100  # inside the torch.save body, well past magic and digest
    assert i > len(MAGIC) + 65
    return raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]


def _flip_digest_byte(raw: bytes) -> bytes:
    i = len(MAGIC) + 3
    return raw[:i] + (b"0" if raw[i : i + 1] != b"0" else b"1") + raw[i + 1 :]


CORRUPTIONS = {
    "flipped payload byte": (_flip_payload_byte, "digest mismatch"),
    "flipped digest byte": (_flip_digest_byte, "digest mismatch"),
    "truncated": (lambda raw: raw[: len(raw) // 2], "digest mismatch"),
    "truncated inside header": (lambda raw: raw[:5], "bad magic"),
    "overwritten magic": (lambda raw: b"X" * len(MAGIC) + raw[len(MAGIC) :], "bad magic"),
    "empty": (lambda raw: b"", "bad magic"),
    "appended bytes": (lambda raw: raw + b"\0", "digest mismatch"),
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_corrupt_entry_is_detected_moved_aside_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    cache = Cache(tmp_path)
    key = key_of(BASE_FIELDS)
    path = cache.put(key, _payload(key))
    damage, reason = CORRUPTIONS[how]
    bad = damage(path.read_bytes())
    path.write_bytes(bad)
    with caplog.at_level(logging.WARNING, logger="dse.nets.cache"):
        assert cache.get(key) is None
    # Moved aside, byte for byte: nothing stored is lost.
    assert not path.exists()
    aside = [p for p in path.parent.iterdir() if p.name.endswith(".corrupt")]
    assert len(aside) == 1 and aside[0].name.startswith(key)
    assert aside[0].read_bytes() == bad
    # One warning, naming the file and the reason.
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage() and reason in warnings[0].getMessage()
    # The key is now a plain miss, and a fresh entry works again.
    assert cache.get(key) is None and cache.keys() == []
    cache.put(key, _payload(key))
    _assert_same(_payload(key), cache.get(key))


def test_entry_of_another_key_is_not_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A valid file copied under a different key (digest fine) is still rejected."""
    cache = Cache(tmp_path)
    a = key_of(BASE_FIELDS)
    b = key_of(dict(BASE_FIELDS, density=0.5))
    src = cache.put(a, _payload(a))
    dst = cache.path(b)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    with caplog.at_level(logging.WARNING, logger="dse.nets.cache"):
        assert cache.get(b) is None
    assert "another key" in caplog.text and str(dst) in caplog.text
    assert not dst.exists() and any(p.name.endswith(".corrupt") for p in dst.parent.iterdir())
    assert cache.get(a) is not None  # the genuine entry is untouched


def test_repeated_corruption_keeps_every_corrupt_file(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    key = key_of(BASE_FIELDS)
    kept = []
    for i in range(3):
        path = cache.put(key, _payload(key))
        bad = path.read_bytes()[: 50 + i]
        path.write_bytes(bad)
        assert cache.get(key) is None
        kept.append(bad)
    aside = sorted(p.read_bytes() for p in path.parent.iterdir() if ".corrupt" in p.name)
    assert aside == sorted(kept)


def test_an_entry_written_while_a_corrupt_one_is_read_is_not_moved_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that found the old file corrupt must not move aside the good entry another
    process renamed into place meanwhile."""
    cache = Cache(tmp_path)
    key = key_of(BASE_FIELDS)
    path = cache.put(key, _payload(key))
    path.write_bytes(path.read_bytes()[:60])  # what a crash of a non-atomic writer leaves
    real = Cache._check

    def check_while_another_writes(raw: bytes) -> str | None:
        monkeypatch.setattr(Cache, "_check", staticmethod(real))
        Cache(tmp_path).put(key, _payload(key))  # the other process, between read and check
        return real(raw)

    monkeypatch.setattr(Cache, "_check", staticmethod(check_while_another_writes))
    assert cache.get(key) is None  # what this reader read was corrupt
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # nothing set aside
    _assert_same(_payload(key), cache.get(key))


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_leaves_no_temp_file(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    for i in range(3):
        key = key_of(dict(BASE_FIELDS, density=1 / (i + 2)))
        cache.put(key, _payload(key))
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 3 and all(f.endswith(".dse") and "/." not in f for f in files)
    target = tmp_path / "deep" / "out.json"
    atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}" and os.listdir(target.parent) == ["out.json"]


def test_a_write_removes_the_stale_temp_files_a_killed_writer_left(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    key = key_of(BASE_FIELDS)
    path = cache.path(key)
    path.parent.mkdir(parents=True)
    stale, live = (path.parent / f".{path.name}.{n}.tmp" for n in ("old", "new"))
    stale.write_bytes(b"half")
    live.write_bytes(b"being written")
    os.utime(stale, (0, time.time() - 2 * C.STALE_TEMP_S))
    cache.put(key, _payload(key))
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, live.name])


def test_failed_write_keeps_old_entry_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path)
    key = key_of(BASE_FIELDS)
    path = cache.put(key, {"key": key, "x": torch.zeros(3)})
    before = path.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(C.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        cache.put(key, {"key": key, "x": torch.ones(3)})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]
    got = cache.get(key)
    assert got is not None and torch.equal(got["x"], torch.zeros(3))


# --------------------------------------------------------------------------- safe loading

MARKER_ENV = "DSE_TEST_CACHE_MARKER"


def _touch_marker(path: str) -> str:
    """Would run if a cache file could execute code on load."""
    Path(path).write_text("code ran")
    return path


class Evil:
    """Unpickling this calls :func:`_touch_marker`: what a malicious cache file would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_touch_marker, (self.marker,))


class Plain:
    """An ordinary user object: not a tensor, number, string or container of those."""

    def __init__(self) -> None:
        self.x = 1


@pytest.mark.parametrize("obj", ["plain", "evil"])
def test_put_refuses_payload_that_cannot_load_safely(tmp_path: Path, obj: str) -> None:
    cache = Cache(tmp_path / "c")
    key = key_of(BASE_FIELDS)
    marker = tmp_path / "marker"
    value = Plain() if obj == "plain" else Evil(marker)
    with pytest.raises(TypeError, match="weights_only"):
        cache.put(key, {"key": key, "obj": value, "x": torch.zeros(1)})
    assert cache.keys() == [] and not marker.exists()
    assert not any(p.is_file() for p in (tmp_path / "c").rglob("*"))


def test_crafted_file_with_code_is_never_executed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file with a valid digest whose pickle would call a function: rejected, not run."""
    cache = Cache(tmp_path / "c")
    key = key_of(BASE_FIELDS)
    marker = tmp_path / "marker"
    buf = io.BytesIO()
    torch.save({"key": key, "obj": Evil(marker)}, buf)
    body = buf.getvalue()
    # Sanity: an unsafe load of the very same bytes does run the code.
    torch.load(io.BytesIO(body), weights_only=False)
    assert marker.read_text() == "code ran"
    marker.unlink()
    digest = hashlib.sha256(body).hexdigest().encode()
    atomic_write_bytes(cache.path(key), MAGIC + digest + b"\n" + body)
    with caplog.at_level(logging.WARNING, logger="dse.nets.cache"):
        assert cache.get(key) is None
    assert not marker.exists()
    assert "unreadable payload" in caplog.text
    assert cache.path(key).with_suffix(".corrupt").is_file()
