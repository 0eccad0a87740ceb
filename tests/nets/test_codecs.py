"""Codecs of the tensors at a cut: accuracy of each format, real payload sizes, the batch
path against the per-sample one, and every kind of damaged payload refused."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

from dse.costmodel import CODEC_BODY_FRACTION, CODEC_LOSSLESS
from dse.errors import InputError
from dse.nets.codecs import (
    CODEC_DTYPES,
    LOSSLESS,
    MAGIC,
    Codec,
    PayloadError,
    body_bytes,
    decode_payload,
    payload_header_bytes,
)

ALL = [
    Codec(d, ch, ll)
    for d in CODEC_DTYPES
    for ch in ((False, True) if d.startswith("int") else (False,))
    for ll in (None, *LOSSLESS)
]
QUANT = [c for c in ALL if c.dtype in ("int8", "int4")]


def sample(
    seed: int = 0, shape: tuple[int, ...] = (1, 4, 5, 6), relu: bool = False
) -> torch.Tensor:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 3 + 1
    return torch.relu(x) if relu else x


def resign(payload: bytes | bytearray) -> bytes:
    """A payload with its length field and CRC recomputed: a well-formed envelope around
    whatever the test put inside."""
    body = bytearray(payload[:-4])
    struct.pack_into("<I", body, 8, len(body) + 4)
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


def test_vocabulary_matches_the_cost_model():
    assert CODEC_DTYPES == ("fp32", "fp16", "bf16", "int8", "int4")
    assert tuple(CODEC_BODY_FRACTION) == CODEC_DTYPES
    assert LOSSLESS == CODEC_LOSSLESS == ("zstd", "zlib")


@pytest.mark.parametrize("codec", ALL, ids=str)
def test_names_parse_back_and_ids_are_distinct(codec: Codec):
    assert Codec.parse(codec.name) == codec
    assert Codec.from_id(codec.codec_id) == codec
    assert str(codec) == codec.name
    assert codec.lossy == (codec.dtype != "fp32")
    assert len({c.codec_id for c in ALL}) == len(ALL)


def test_canonical_names():
    assert Codec("int8", True).name == "int8-ch"
    assert Codec("int4", True, "zstd").name == "int4-ch+zstd"
    assert Codec("bf16", lossless="zlib").name == "bf16+zlib"
    assert not Codec.parse("fp32+zstd").lossy and Codec.parse("fp16").lossy


@pytest.mark.parametrize(
    "text, says",
    [
        ("int3", "unknown number format 'int3'"),
        ("fp16-ch", "int8 and int4 only"),
        ("int8+lz4", "unknown lossless coder 'lz4'"),
        ("int8-pc", "unknown option"),
        ("INT8", "cannot read"),
        ("", "cannot read"),
        ("int8+", "cannot read"),
    ],
)
def test_parse_errors_name_the_field_and_list_the_valid_forms(text: str, says: str):
    with pytest.raises(InputError) as err:
        Codec.parse(text, where="studies/x.toml", field="space.codecs")
    msg = str(err.value)
    assert msg.startswith("studies/x.toml: space.codecs: ") and says in msg
    assert "int8-ch" in msg and "+zstd" in msg and "fp16" in msg  # the valid forms


def test_direct_construction_is_checked():
    for bad in (
        dict(dtype="int3"),
        dict(dtype="fp16", per_channel=True),
        dict(dtype="int8", lossless="lz4"),
    ):
        with pytest.raises(ValueError):
            Codec(**bad)  # type: ignore[arg-type]


# --- accuracy ---------------------------------------------------------------------------


@pytest.mark.parametrize("lossless", [None, *LOSSLESS])
def test_fp32_is_exact_and_fp16_bf16_round_to_nearest(lossless: str | None):
    x = sample()
    assert torch.equal(
        Codec("fp32", lossless=lossless).decode(Codec("fp32", lossless=lossless).encode([x]))[0], x
    )
    for dtype, half_ulp in (("fp16", 2.0**-11), ("bf16", 2.0**-8)):
        c = Codec(dtype, lossless=lossless)
        y = c.decode(c.encode([x]))[0]
        assert y.dtype == torch.float32 and y.shape == x.shape
        assert torch.all((y - x).abs() <= half_ulp * x.abs() + 1e-7)
        assert not torch.equal(y, x)  # it is really lossy


@pytest.mark.parametrize("codec", QUANT, ids=str)
@pytest.mark.parametrize("relu", [False, True])
def test_int_codecs_are_within_half_a_step(codec: Codec, relu: bool):
    x = sample(1, relu=relu)
    y = codec.decode(codec.encode([x]))[0]
    levels = 2 ** (8 if codec.dtype == "int8" else 4) - 1
    dims = (0, 2, 3) if codec.per_channel else (0, 1, 2, 3)
    lo, hi = x.amin(dims, keepdim=True), x.amax(dims, keepdim=True)
    step = (hi - lo) / levels
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.all((y - x).abs() <= step / 2 * (1 + 1e-4) + 1e-6)
    # the minimum maps to code 0 exactly, the maximum to the top code
    assert torch.equal(y.amin(dims, keepdim=True), lo)
    assert torch.allclose(y.amax(dims, keepdim=True), hi, rtol=1e-6, atol=1e-6)


def test_a_relu_tensor_uses_the_whole_unsigned_range():
    x = sample(2, (1, 16, 16, 16), relu=True)
    payload = Codec("int8").encode([x])
    scale, lo = struct.unpack_from("<ff", payload, 12 + 1 + 4)  # 4 one-byte dimensions
    assert lo == 0.0 and scale == pytest.approx(float(x.max()) / 255)  # code 0 is 0.0
    codes = np.frombuffer(payload[-4 - x.numel() : -4], np.uint8)
    assert codes.min() == 0 and codes.max() == 255
    # more distinct codes than the 128 a symmetric signed range leaves for values >= 0
    assert len(np.unique(codes)) > 150


def test_per_channel_beats_per_tensor_on_channels_of_different_scales():
    x = sample(3) * torch.tensor([0.01, 0.1, 1.0, 10.0]).reshape(1, 4, 1, 1)
    err = {
        ch: (Codec("int8", ch).decode(Codec("int8", ch).encode([x]))[0] - x)[:, 0].abs().max()
        for ch in (False, True)
    }
    assert err[True] < err[False] / 100


@pytest.mark.parametrize("codec", QUANT, ids=str)
def test_constant_tensors_roundtrip_exactly(codec: Codec):
    tensors = [torch.full((1, 3, 4), 2.5), torch.zeros(1, 7), torch.full((1, 2, 2), -1e-3)]
    # per channel: each channel constant at its own value
    tensors.append(torch.arange(3.0).reshape(1, 3, 1).expand(1, 3, 5).contiguous())
    out = codec.decode(codec.encode(tensors))
    for x, y in zip(tensors, out, strict=True):
        if codec.per_channel or x.unique().numel() == 1:
            assert torch.equal(x, y)


@pytest.mark.parametrize("codec", ALL, ids=str)
def test_several_tensors_of_several_ranks_in_one_payload(codec: Codec):
    tensors = [sample(4), sample(5, (1, 7), relu=True), sample(6, (1,)), sample(7, (1, 3, 5))]
    out = codec.decode(codec.encode(tensors))
    assert [y.shape for y in out] == [x.shape for x in tensors]
    tol = {"fp32": 0, "fp16": 1e-2, "bf16": 1e-1, "int8": 0.2, "int4": 3.0}[codec.dtype]
    for x, y in zip(tensors, out, strict=True):
        assert (x - y).abs().max() <= tol


@pytest.mark.parametrize("codec", ALL, ids=str)
def test_tensors_without_elements_are_coded_by_their_shape(codec: Codec):
    tensors = [torch.zeros(1, 0), torch.zeros(1, 3, 0), sample(8, (1, 5))]
    out = codec.decode(codec.encode(tensors))
    assert [y.shape for y in out] == [(1, 0), (1, 3, 0), (1, 5)]


def test_bad_input_to_encode():
    c = Codec("int8")
    with pytest.raises(ValueError, match="batch dimension 1"):
        c.encode([torch.zeros(2, 3)])
    with pytest.raises(ValueError, match="no tensor"):
        c.encode([])
    with pytest.raises(ValueError, match="non-finite"):
        c.encode([torch.tensor([[1.0, float("nan")]])])
    with pytest.raises(ValueError, match="non-finite"):
        c.encode([torch.tensor([[1.0, float("inf")]])])
    with pytest.raises(ValueError, match="rank"):
        c.encode([torch.tensor(1.0)])
    with pytest.raises(ValueError, match="batch sizes differ"):
        c.roundtrip([torch.zeros(2, 3), torch.zeros(3, 3)])


# --- sizes ------------------------------------------------------------------------------


def test_int8_of_a_16_kB_tensor_is_3_9_times_smaller_than_fp32():
    x = sample(9, (1, 16, 16, 16))  # 4096 values, 16 kB of float32
    fp32, int8 = len(Codec("fp32").encode([x])), len(Codec("int8").encode([x]))
    assert x.numel() * 4 == 16384 and fp32 > 16384
    assert fp32 / int8 > 3.9 and 16384 / int8 > 3.9
    assert int8 == 4096 + payload_header_bytes(Codec("int8"), [x.shape])
    int4 = len(Codec("int4").encode([x]))
    assert int4 == 2048 + payload_header_bytes(Codec("int4"), [x.shape])


@pytest.mark.parametrize("codec", ALL, ids=str)
def test_uncompressed_payload_is_header_plus_body(codec: Codec):
    shapes = [(1, 4, 5, 6), (1, 7)]
    tensors = [sample(i, s) for i, s in enumerate(shapes)]
    plain = Codec(codec.dtype, codec.per_channel)
    assert len(plain.encode(tensors)) == payload_header_bytes(plain, shapes) + sum(
        body_bytes(plain, s) for s in shapes
    )


@pytest.mark.parametrize("lossless", LOSSLESS)
def test_lossless_coders_shrink_a_relu_int8_body(lossless: str):
    x = sample(10, (1, 32, 16, 16), relu=True)  # half the values are 0
    plain, coded = Codec("int8"), Codec("int8", lossless=lossless)
    assert len(coded.encode([x])) < 0.8 * len(plain.encode([x]))
    assert torch.equal(coded.decode(coded.encode([x]))[0], plain.decode(plain.encode([x]))[0])


# --- the batch path ---------------------------------------------------------------------


@pytest.mark.parametrize("codec", ALL, ids=str)
def test_roundtrip_is_exactly_the_per_sample_decode_of_the_encode(codec: Codec):
    n = 6
    batch = [sample(11, (n, 4, 3, 5)), sample(12, (n, 9), relu=True), sample(13, (n, 2, 0))]
    batch[0][2] = 0.75  # one constant sample
    decoded, sizes = codec.roundtrip(batch)
    assert sizes.dtype == np.int64 and sizes.shape == (n,)
    assert [d.shape for d in decoded] == [b.shape for b in batch]
    for i in range(n):
        payload = codec.encode([b[i : i + 1] for b in batch])
        assert sizes[i] == len(payload)
        for whole, one in zip(decoded, codec.decode(payload), strict=True):
            assert whole.dtype == torch.float32
            assert torch.equal(whole[i : i + 1], one)
    if codec.lossless:  # sizes are measured per sample, not one formula
        assert len(set(sizes.tolist())) > 1


def test_roundtrip_does_not_alias_its_input():
    x = sample(14, (2, 3))
    decoded, _ = Codec("fp32").roundtrip([x])
    decoded[0].zero_()
    assert x.abs().sum() > 0


# --- damaged payloads -------------------------------------------------------------------


@pytest.mark.parametrize("codec", ALL, ids=str)
def test_every_single_byte_flip_is_refused(codec: Codec):
    payload = codec.encode([sample(15, (1, 2, 3)), sample(16, (1, 3))])
    assert codec.decode(payload)  # intact
    for pos in range(len(payload)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(payload)
            bad[pos] ^= flip
            with pytest.raises(PayloadError):
                codec.decode(bytes(bad))


@pytest.mark.parametrize("codec", [Codec("int8"), Codec("fp16", lossless="zstd")], ids=str)
def test_truncated_and_extended_payloads_are_refused(codec: Codec):
    payload = codec.encode([sample(17, (1, 8))])
    for cut in range(len(payload)):
        with pytest.raises(PayloadError, match="truncated|magic"):
            codec.decode(payload[:cut])
    with pytest.raises(PayloadError, match="1 trailing bytes"):
        codec.decode(payload + b"\0")


def test_each_refusal_says_what_is_wrong():
    c = Codec("int8")
    payload = c.encode([sample(18, (1, 5))])
    cases = {
        "magic": b"XSEC" + payload[4:],
        "version 3": payload[:4] + b"\x03" + payload[5:],
        "CRC32 mismatch": payload[:-1] + bytes([payload[-1] ^ 1]),
        "unknown codec id": resign(payload[:5] + b"\x07" + payload[6:]),
        "coded with int4": Codec("int4").encode([sample(18, (1, 5))]),
    }
    for says, bad in cases.items():
        with pytest.raises(PayloadError, match=says) as err:
            c.decode(bad)
        assert str(err.value).startswith("payload: ") and "\n" not in str(err.value)
    assert isinstance(err.value, InputError) and isinstance(err.value, ValueError)
    with pytest.raises(PayloadError, match="expected bytes"):
        c.decode("DSEC")  # type: ignore[arg-type]


def test_well_formed_envelopes_around_inconsistent_contents_are_refused():
    """A correct length and CRC do not make a payload valid: the headers must agree
    with the body."""
    x = sample(19, (1, 6))
    p = Codec("int8").encode([x])  # 12 fixed + rank 1 + 2 one-byte dims + 8 params = 23
    shape_at = 12 + 1 + 1  # second dimension
    cases = {
        "needs 7|values where": p[:shape_at] + b"\x07" + p[shape_at + 1 :],
        "batch dimension 2": p[:13] + b"\x02" + p[14:],
        "rank 0": p[:12] + b"\x00" + p[13:],
        "rank 9": p[:12] + b"\x09" + p[13:],
        "holds no tensor": p[:6] + b"\x00\x00" + p[8:],
        "negative or non-finite": p[:15] + struct.pack("<f", -1.0) + p[19:],
        "values where": p[:-5] + p[-4:],  # one value fewer in the body
        # dimensions are varints: the shortest form only, at most 5 bytes, below 2^32
        "shortest form": p[:shape_at] + b"\x86\x00" + p[shape_at + 1 :],
        "over 5 bytes": p[:shape_at] + b"\x86\x80\x80\x80\x80\x00" + p[shape_at + 1 :],
        "exceeds 2": p[:shape_at] + b"\xff\xff\xff\xff\x1f" + p[shape_at + 1 :],
    }
    for says, bad in cases.items():
        with pytest.raises(PayloadError, match=says):
            Codec("int8").decode(resign(bad))
    # a lossless body that is not a stream of its coder, or holds the wrong size
    z = Codec("int8", lossless="zstd")
    pz = z.encode([x])
    body_at = 12 + 1 + 2 + 8
    with pytest.raises(PayloadError, match="zstd"):
        z.decode(resign(pz[:body_at] + b"garbage!" + pz[-4:]))
    other = z.encode([sample(19, (1, 7))])  # a valid frame of 7 values behind a 6-value shape
    with pytest.raises(PayloadError, match="holds 7 bytes where the shapes need 6"):
        z.decode(resign(pz[:body_at] + other[body_at:-4] + pz[-4:]))
    zl = Codec("int8", lossless="zlib")
    pl = zl.encode([x])
    with pytest.raises(PayloadError, match="zlib"):
        zl.decode(resign(pl[:-4] + b"\0\0" + pl[-4:]))


def test_int4_padding_nibble_must_be_zero():
    c = Codec("int4")
    p = bytearray(c.encode([sample(20, (1, 5))]))  # 5 codes: the last byte's high nibble pads
    p[-5] |= 0xF0
    with pytest.raises(PayloadError, match="padding nibble"):
        c.decode(resign(p))


def test_decode_payload_reads_the_codec_from_the_header():
    x = sample(21, (1, 3, 2))
    for codec in ALL:
        named, out = decode_payload(codec.encode([x]))
        assert named == codec and out[0].shape == x.shape
    assert decode_payload(bytearray(Codec("fp32").encode([x])))[0] == Codec("fp32")
    assert MAGIC == b"DSEC"
