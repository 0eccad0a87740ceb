"""Codecs for the tensors at a cut: the bytes an edge device really sends the server.

A :class:`Codec` is a number format (``fp32``, ``fp16``, ``bf16``, ``int8``, ``int4``),
for the integer formats per tensor or per channel (``-ch``), optionally followed by a
lossless coder over the whole body (``+zstd``, level 3; ``+zlib``, level 6). Its canonical
text is :attr:`Codec.name` (``"int8-ch+zstd"``); :meth:`Codec.parse` reads it back.
:meth:`Codec.encode` turns one sample's tensors (batch dimension 1, what a device sends)
into a payload, :meth:`Codec.decode` turns a payload back into float32 tensors, and
:meth:`Codec.roundtrip` does both for a batch at once, returning every sample's payload
length from a real encode (never a formula) and decoded tensors identical to
``decode(encode(sample))``. Encoding is two steps, :meth:`Codec.quantize` (tensor operations
only: a deployed edge program computes it in its graph) and :meth:`Codec.pack` (the bytes);
decoding likewise, :func:`read_payload` then :func:`dequantize` (in a server program), so
a deployed split and the study share one implementation of each.

Affine quantisation (int8: b = 8, int4: b = 4), per tensor or per channel (dimension 1):
``lo = min``, ``scale = (max - min) / (2^b - 1)``, code ``q = clamp(round((x - lo) /
scale), 0, 2^b - 1)`` (round half to even), decoded ``q * scale + lo``, all in float32, so
the error is at most half a step (``scale / 2``) plus float32 rounding. The zero point is
stored in real units (``lo``, the value of code 0; the integer zero point of other
formats is ``-lo / scale``, rounded, which would move the minimum): the minimum maps to
code 0 exactly, so a non-negative tensor (after a ReLU) spends the whole unsigned range
``0 .. 2^b - 1`` on ``[min, max]`` and no code on negative values that never occur. A
constant tensor (``max == min``) has ``scale = 0``: every code is 0 and it decodes to
``lo`` exactly, with no division by zero. fp16 and bf16 round to nearest even (fp16
overflows to infinity beyond 65504). Tensors with no elements are coded (their shape
only); non-finite values cannot be quantised (``ValueError``).

Payload format, version 2 (integers unsigned little-endian; floats IEEE little-endian;
dimensions as LEB128 varints, 7 bits a byte, low first, at most 5 bytes: a 4 kB tensor's
header is then 13 bytes instead of 25, which matters where the body is 1 kB)::

    offset   bytes     field
    0        4         magic b"DSEC"
    4        1         format version: 2
    5        1         codec id: bits 0-2 dtype (0 fp32, 1 fp16, 2 bf16, 3 int8, 4 int4),
                       bit 3 per channel, bits 4-5 lossless (0 none, 1 zstd, 2 zlib),
                       bits 6-7 zero
    6        2         number of tensors T, >= 1
    8        4         length of the whole payload in bytes, this header and the CRC included
    12       ...       T tensor headers, each: rank r (1 byte, 1..8); r dimensions (a varint
                       each, < 2^32; dimension 0, the batch, is 1); for int8/int4 then C scales and
                       C offsets ``lo`` (float32 each), C = dimension 1 per channel (rank
                       >= 2), else 1
    ...      ...       body: each tensor's values in C order, one tensor after another:
                       fp32 float32, fp16 IEEE half, bf16 the top 16 bits of float32, int8
                       one code per byte, int4 two codes per byte (the first in the low
                       nibble; an odd count leaves the last high nibble 0); each tensor
                       starts on a byte boundary. With a lossless coder the whole body is
                       one zstd frame (with its content size) or one zlib stream.
    end - 4  4         CRC32 (zlib.crc32) of every byte before it

:meth:`Codec.decode` refuses (:class:`PayloadError`, one line naming what is wrong) a
wrong magic, an unknown version or codec, a payload coded with another codec, a
truncated payload, trailing bytes, a CRC mismatch, and any inconsistency between the
tensor headers and the body: a damaged payload is never decoded to noise.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import zstandard

from dse.errors import InputError

CODEC_DTYPES: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8", "int4")
LOSSLESS: tuple[str, ...] = ("zstd", "zlib")
MAGIC = b"DSEC"
FORMAT_VERSION = 2
ZSTD_LEVEL = 3
ZLIB_LEVEL = 6
MAX_RANK = 8
#: Bits per code of the quantised formats.
QUANT_BITS: dict[str, int] = {"int8": 8, "int4": 4}

_LOSSLESS_ID: dict[str | None, int] = {None: 0, "zstd": 1, "zlib": 2}
_HEAD = struct.Struct("<4sBBHI")  # magic, version, codec id, tensors, payload length
_CRC = struct.Struct("<I")
_MIN_PAYLOAD = _HEAD.size + 1 + 4 + _CRC.size  # one rank-1 tensor, no parameters, no data
_FORMS = (
    "fp32, fp16, bf16, int8, int4, int8-ch, int4-ch, each optionally followed by "
    "+zstd or +zlib (e.g. int8, int8-ch+zstd, fp16+zlib)"
)
_NAME_RE = re.compile(r"^([a-z0-9]+)(-[a-z0-9]+)?(?:\+([a-z0-9]+))?$")


class PayloadError(InputError, ValueError):
    """A payload that is not a valid, intact dse codec payload (one line: what is wrong)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(
            "payload",
            field,
            reason,
            "the payload is damaged or not a dse codec payload: send it again",
        )


class _Coded(NamedTuple):
    """One tensor of a batch, coded: what the payload of each sample holds, vectorised."""

    shape: tuple[int, ...]  # one sample's shape, batch dimension 1
    scale: torch.Tensor | None  # [N, C] float32, int8/int4 only
    lo: torch.Tensor | None  # [N, C] float32, int8/int4 only
    values: torch.Tensor  # [N, ...]: the coded values (float32, float16, bfloat16, uint8)
    data: np.ndarray  # [N, bytes] uint8: each sample's body bytes of this tensor


class Quantized(NamedTuple):
    """The numeric part of coding one tensor (:meth:`Codec.quantize`), a batch ``[N, ...]``:
    what a deployed edge program computes and its runtime packs (:meth:`Codec.pack`)."""

    values: torch.Tensor  # float32, float16, bfloat16, or uint8 codes (full shape)
    scale: torch.Tensor | None  # [N, C] float32, int8/int4 only
    lo: torch.Tensor | None  # [N, C] float32, int8/int4 only


@dataclass(frozen=True)
class Codec:
    """How the tensors crossing a cut are coded: number format, scaling, lossless coder."""

    dtype: str  # one of CODEC_DTYPES
    per_channel: bool = False  # int8/int4: one (scale, lo) per channel (dimension 1)
    lossless: str | None = None  # None, "zstd" or "zlib", over the whole body

    def __post_init__(self) -> None:
        if self.dtype not in CODEC_DTYPES:
            raise ValueError(f"codec dtype must be one of {CODEC_DTYPES}, got {self.dtype!r}")
        if self.per_channel and self.dtype not in QUANT_BITS:
            raise ValueError(f"per_channel applies to int8 and int4 only, not {self.dtype}")
        if self.lossless not in _LOSSLESS_ID:
            raise ValueError(f"lossless must be None or one of {LOSSLESS}, got {self.lossless!r}")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """Canonical text: ``"fp32"``, ``"int8-ch"``, ``"int4-ch+zstd"``, ``"bf16+zlib"``."""
        return (
            self.dtype
            + ("-ch" if self.per_channel else "")
            + (f"+{self.lossless}" if self.lossless else "")
        )

    @classmethod
    def parse(cls, text: str, *, where: str = "space", field: str = "codecs") -> Codec:
        """The codec named ``text`` (:attr:`name`'s form); an :class:`InputError` naming
        ``where`` and ``field`` and listing the valid forms for anything else."""
        if not isinstance(text, str):
            raise InputError(
                where, field, f"a codec is a string, got {text!r}", f"valid forms: {_FORMS}"
            )
        m = _NAME_RE.match(text.strip())
        if m is None:
            raise InputError(
                where, field, f"cannot read {text!r} as a codec", f"valid forms: {_FORMS}"
            )
        dtype, suffix, lossless = m.groups()
        if dtype not in CODEC_DTYPES:
            raise InputError(
                where,
                field,
                f"unknown number format {dtype!r} in {text!r}",
                f"valid forms: {_FORMS}",
            )
        if suffix is not None and suffix != "-ch":
            raise InputError(
                where, field, f"unknown option {suffix!r} in {text!r}", f"valid forms: {_FORMS}"
            )
        if suffix == "-ch" and dtype not in QUANT_BITS:
            raise InputError(
                where,
                field,
                f"{text!r}: per channel (-ch) applies to int8 and int4 only",
                f"valid forms: {_FORMS}",
            )
        if lossless is not None and lossless not in LOSSLESS:
            raise InputError(
                where,
                field,
                f"unknown lossless coder {lossless!r} in {text!r}",
                f"valid forms: {_FORMS}",
            )
        return cls(dtype, suffix == "-ch", lossless)

    @property
    def quantised(self) -> bool:
        """Whether values become integer codes with a scale and an offset (int8, int4):
        :meth:`quantize` then returns all three, else the cast values alone."""
        return self.dtype in QUANT_BITS

    @property
    def lossy(self) -> bool:
        """Whether decoding may change a value: every format but fp32 (with or without a
        lossless coder)."""
        return self.dtype != "fp32"

    @property
    def codec_id(self) -> int:
        """The codec's byte in the payload header (see the module docstring)."""
        return (
            CODEC_DTYPES.index(self.dtype)
            | (8 if self.per_channel else 0)
            | (_LOSSLESS_ID[self.lossless] << 4)
        )

    @classmethod
    def from_id(cls, codec_id: int) -> Codec:
        """The codec of a payload header's codec byte; :class:`PayloadError` if unknown."""
        dtype, lossless = codec_id & 7, (codec_id >> 4) & 3
        per_channel = bool(codec_id & 8)
        if (
            codec_id >> 6
            or dtype >= len(CODEC_DTYPES)
            or lossless == 3
            or per_channel
            and CODEC_DTYPES[dtype] not in QUANT_BITS
        ):
            raise PayloadError("codec", f"unknown codec id {codec_id:#04x}")
        return cls(CODEC_DTYPES[dtype], per_channel, (None, *LOSSLESS)[lossless])

    # --- coding ---------------------------------------------------------------------

    def encode(self, tensors: Sequence[torch.Tensor]) -> bytes:
        """The payload of one sample's tensors, each with batch dimension 1: the numeric
        part (:meth:`quantize`) then the byte packing (:meth:`pack`), the two steps a
        deployed edge program splits between its graph and its runtime."""
        batch = _check(tensors, single=True)
        return self.pack([self.quantize(t) for t in batch])

    def quantize(self, x: torch.Tensor) -> Quantized:
        """The numeric part of coding a batch ``[N, ...]`` of one float32 tensor: its
        coded values (float32, float16, bfloat16, or uint8 codes of the full shape for
        int8 and int4) and, for int8/int4, per sample the ``[N, C]`` scales and offsets
        ``lo`` (see the module docstring).

        Tensor operations only, no data-dependent Python, so ``torch.export`` can put it
        in a program; :meth:`pack` checks what it cannot (non-finite values).
        """
        n = x.shape[0]
        if self.dtype == "fp32":
            return Quantized(x, None, None)
        if self.dtype == "fp16":
            return Quantized(x.to(torch.float16), None, None)
        if self.dtype == "bf16":
            return Quantized(x.to(torch.bfloat16), None, None)
        levels = 2 ** QUANT_BITS[self.dtype] - 1
        c = channels(x.shape, self.per_channel)
        if x.numel() == 0:
            lo = hi = torch.zeros(n, c)
        else:
            flat = x.reshape(n, c, -1)
            lo, hi = flat.amin(2), flat.amax(2)
        scale = (hi - lo) / levels
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        q = torch.round((x - _per_value(lo, x.dim())) / _per_value(safe, x.dim()))
        return Quantized(q.clamp(0, levels).to(torch.uint8), scale, lo)

    def pack(self, quantized: Sequence[Quantized]) -> bytes:
        """One sample's payload from its tensors' :meth:`quantize` results (batch
        dimension 1): the tensor headers, the body's bytes (int4 two codes a byte), the
        lossless coder, the CRC. ``ValueError`` for a non-finite scale or offset (a
        tensor with non-finite values or a range beyond float32)."""
        if not quantized:
            raise ValueError("no tensor to code: give at least one")
        if len(quantized) >= 2**16:
            raise ValueError(f"{len(quantized)} tensors: a payload holds at most 65535")
        coded = [self._coded(q, i) for i, q in enumerate(quantized)]
        if any(c.values.shape[0] != 1 for c in coded):
            raise ValueError("pack codes one sample: batch dimension 1")
        return self._pack(coded, 0, self._compressor())

    def decode(self, payload: bytes) -> list[torch.Tensor]:
        """The float32 tensors (batch dimension 1) of a payload this codec encoded;
        :class:`PayloadError` for anything else (see the module docstring)."""
        codec, tensors = decode_payload(payload)
        if codec != self:
            raise PayloadError("codec", f"the payload was coded with {codec.name}, not {self.name}")
        return tensors

    def roundtrip(self, tensors: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], np.ndarray]:
        """Code a batch of N samples (each tensor ``[N, ...]``) one sample per payload.

        Returns the decoded tensors (float32, the input shapes), identical to
        ``decode(encode(sample))`` sample by sample, and each sample's payload length in
        bytes (int64 ``[N]``), the length of its real encoded payload. Quantisation and
        decoding are vectorised over the batch; each payload is still built and, with a
        lossless coder, compressed.
        """
        batch = _check(tensors, single=False)
        coded = [self._code(t, i) for i, t in enumerate(batch)]
        n = batch[0].shape[0]
        compressor = self._compressor()
        if self.lossless is None and n:
            # Without an entropy coder a payload's length depends on the shapes alone,
            # which every sample of the batch shares: one real payload gives them all
            # (a test holds this against encoding every sample).
            sizes = np.full(n, len(self._pack(coded, 0, None)), dtype=np.int64)
        else:
            sizes = np.fromiter(
                (len(self._pack(coded, i, compressor)) for i in range(n)), dtype=np.int64, count=n
            )
        return [self._decoded(c) for c in coded], sizes

    # --- internals ------------------------------------------------------------------

    def _compressor(self) -> zstandard.ZstdCompressor | None:
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL) if self.lossless == "zstd" else None

    def _code(self, x: torch.Tensor, index: int) -> _Coded:
        """Quantise or cast a batch ``[N, ...]`` of one tensor, per sample."""
        return self._coded(self.quantize(x), index)

    def _coded(self, quantized: Quantized, index: int) -> _Coded:
        """A batch's :meth:`quantize` result with each sample's body bytes (checked:
        quantised values need finite scales and offsets)."""
        values, scale, lo = quantized
        values = values.detach().cpu().contiguous()
        n = values.shape[0]
        shape = (1, *values.shape[1:])
        if self.dtype == "fp32":
            return _Coded(shape, None, None, values, _bytes(values.numpy(), "<f4", n))
        if self.dtype == "fp16":
            return _Coded(shape, None, None, values, _bytes(values.numpy(), "<f2", n))
        if self.dtype == "bf16":
            return _Coded(
                shape, None, None, values, _bytes(values.view(torch.int16).numpy(), "<i2", n)
            )
        assert scale is not None and lo is not None
        scale, lo = scale.detach().cpu(), lo.detach().cpu()
        if not bool(torch.isfinite(scale).all() and torch.isfinite(lo).all()):
            raise ValueError(
                f"tensor {index} has non-finite values (or a range beyond "
                f"float32): it cannot be quantised to {self.dtype}"
            )
        codes = values.reshape(n, -1).numpy()
        if self.dtype == "int4":
            codes = _pack_nibbles(codes)
        return _Coded(shape, scale, lo, values, np.ascontiguousarray(codes))

    def _decoded(self, c: _Coded) -> torch.Tensor:
        """The float32 values a decoder rebuilds from coded values (a batch)."""
        return dequantize(c.values, c.scale, c.lo)

    def _pack(
        self, coded: Sequence[_Coded], i: int, compressor: zstandard.ZstdCompressor | None
    ) -> bytes:
        """Sample ``i``'s payload."""
        parts = []
        for c in coded:
            parts.append(bytes([len(c.shape)]) + b"".join(_varint(d) for d in c.shape))
            if c.scale is not None and c.lo is not None:
                parts.append(c.scale[i].numpy().astype("<f4").tobytes())
                parts.append(c.lo[i].numpy().astype("<f4").tobytes())
        body = b"".join(c.data[i].tobytes() for c in coded)
        if compressor is not None:
            body = compressor.compress(body)
        elif self.lossless == "zlib":
            body = zlib.compress(body, ZLIB_LEVEL)
        heads = b"".join(parts)
        total = _HEAD.size + len(heads) + len(body) + _CRC.size
        if total >= 2**32:
            raise ValueError(f"a payload of {total} bytes exceeds the format's 4 GiB")
        out = _HEAD.pack(MAGIC, FORMAT_VERSION, self.codec_id, len(coded), total) + heads + body
        return out + _CRC.pack(zlib.crc32(out))


def channels(shape: Sequence[int], per_channel: bool) -> int:
    """Number of (scale, lo) pairs of a tensor of ``shape``: dimension 1 per channel (rank
    >= 2), else 1."""
    return int(shape[1]) if per_channel and len(shape) >= 2 else 1


def payload_header_bytes(codec: Codec, shapes: Sequence[Sequence[int]]) -> int:
    """Bytes of a payload that are not body: the fixed header, every tensor's rank, shape
    and quantisation parameters, and the CRC (with a lossless coder, the compressed body
    is what remains)."""
    total = _HEAD.size + _CRC.size
    for shape in shapes:
        total += 1 + sum(len(_varint(int(d))) for d in shape)
        if codec.quantised:
            total += 8 * channels(shape, codec.per_channel)
    return total


def body_bytes(codec: Codec, shape: Sequence[int]) -> int:
    """Bytes of one tensor's values in the (uncompressed) body."""
    count = int(np.prod(shape, dtype=np.int64))
    if codec.dtype == "int4":
        return (count + 1) // 2
    return count * {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}[codec.dtype]


def decode_payload(payload: bytes) -> tuple[Codec, list[torch.Tensor]]:
    """The codec a payload names and its float32 tensors; :class:`PayloadError` for a
    wrong magic, unknown version or codec, truncation, trailing bytes, a CRC mismatch or
    headers inconsistent with the body."""
    codec, coded = read_payload(payload)
    return codec, [dequantize(*q) for q in coded]


def read_payload(payload: bytes) -> tuple[Codec, list[Quantized]]:
    """The codec a payload names and its tensors as coded (:class:`Quantized`, batch
    dimension 1), before :func:`dequantize`: what a deployed server program reads.
    :class:`PayloadError` as :func:`decode_payload`."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise PayloadError("<bytes>", f"expected bytes, got {type(payload).__name__}")
    payload = bytes(payload)
    size = len(payload)
    if size < len(MAGIC) and MAGIC.startswith(payload):
        raise PayloadError("length", f"truncated: {size} bytes, not even the magic")
    if payload[:4] != MAGIC:
        raise PayloadError("magic", f"starts with {payload[:4]!r}, not {MAGIC!r}")
    if size < _HEAD.size:
        raise PayloadError("length", f"truncated: {size} bytes, shorter than the header")
    _, version, codec_id, count, total = _HEAD.unpack_from(payload)
    if version != FORMAT_VERSION:
        raise PayloadError(
            "version", f"format version {version}; this dse reads version {FORMAT_VERSION}"
        )
    if size < total:
        raise PayloadError("length", f"truncated: {size} of {total} bytes")
    if size > total:
        raise PayloadError(
            "length", f"{size - total} trailing bytes after the {total} of the payload"
        )
    if total < _MIN_PAYLOAD:
        raise PayloadError(
            "length",
            f"a payload of {total} bytes is shorter than the smallest possible ({_MIN_PAYLOAD})",
        )
    (crc,) = _CRC.unpack_from(payload, total - _CRC.size)
    if zlib.crc32(payload[: total - _CRC.size]) != crc:
        raise PayloadError("crc", "CRC32 mismatch: the payload was changed on the way")
    codec = Codec.from_id(codec_id)
    if count < 1:
        raise PayloadError("tensors", "the payload holds no tensor")
    end = total - _CRC.size
    pos = _HEAD.size
    heads: list[tuple[tuple[int, ...], np.ndarray | None, np.ndarray | None]] = []
    for t in range(count):
        if pos + 1 > end:
            raise PayloadError("shape", f"tensor {t}'s header runs past the payload")
        rank = payload[pos]
        pos += 1
        if not 1 <= rank <= MAX_RANK:
            raise PayloadError("shape", f"tensor {t} has rank {rank} (1..{MAX_RANK})")
        dims = []
        for _ in range(rank):
            value, pos = _read_varint(payload, pos, end, t)
            dims.append(value)
        shape = tuple(dims)
        if shape[0] != 1:
            raise PayloadError("shape", f"tensor {t} has batch dimension {shape[0]}, not 1")
        scale = lo = None
        if codec.quantised:
            c = channels(shape, codec.per_channel)
            if pos + 8 * c > end:
                raise PayloadError("scale", f"tensor {t}'s scales run past the payload")
            scale = np.frombuffer(payload, "<f4", c, pos).astype(np.float32)
            lo = np.frombuffer(payload, "<f4", c, pos + 4 * c).astype(np.float32)
            pos += 8 * c
            if not (np.isfinite(scale).all() and np.isfinite(lo).all() and (scale >= 0).all()):
                raise PayloadError(
                    "scale", f"tensor {t} has a negative or non-finite scale or offset"
                )
        heads.append((shape, scale, lo))
    sizes = [body_bytes(codec, shape) for shape, _, _ in heads]
    expected = sum(sizes)
    body = _decompress(codec, payload[pos:end], expected)
    if len(body) != expected:
        raise PayloadError("body", f"{len(body)} bytes of values where the shapes need {expected}")
    tensors = []
    offset = 0
    for t, ((shape, scale, lo), nbytes) in enumerate(zip(heads, sizes, strict=True)):
        chunk = body[offset : offset + nbytes]
        offset += nbytes
        tensors.append(_read_tensor(codec, t, shape, scale, lo, chunk))
    return codec, tensors


def _varint(value: int) -> bytes:
    """``value`` (0 .. 2^32 - 1) as an unsigned LEB128 varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(payload: bytes, pos: int, end: int, t: int) -> tuple[int, int]:
    """A varint at ``pos`` and the position after it; PayloadError if it runs past
    ``end``, is longer than 5 bytes, is not the shortest form or exceeds 2^32 - 1."""
    value = shift = 0
    for i in range(5):
        if pos + i >= end:
            raise PayloadError("shape", f"tensor {t}'s shape runs past the payload")
        byte = payload[pos + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if i and byte == 0:
                raise PayloadError("shape", f"tensor {t}: a dimension is not in its shortest form")
            if value >= 2**32:
                raise PayloadError("shape", f"tensor {t}: a dimension exceeds 2^32 - 1")
            return value, pos + i + 1
    raise PayloadError("shape", f"tensor {t}: a dimension runs over 5 bytes")


def _decompress(codec: Codec, body: bytes, expected: int) -> bytes:
    if codec.lossless is None:
        return body
    try:
        if codec.lossless == "zstd":
            params = zstandard.get_frame_parameters(body)
            if params.content_size != expected:
                raise PayloadError(
                    "body",
                    f"the zstd frame holds {params.content_size} "
                    f"bytes where the shapes need {expected}",
                )
            out = zstandard.ZstdDecompressor().decompress(body, max_output_size=expected)
        else:
            d = zlib.decompressobj()
            out = d.decompress(body, expected + 1)
            if not d.eof or d.unused_data or d.unconsumed_tail:
                raise PayloadError("body", "the zlib stream does not end where the body ends")
    except (zstandard.ZstdError, zlib.error) as exc:
        raise PayloadError(
            "body", f"the {codec.lossless} body does not decompress: {exc}"
        ) from None
    return out


def _read_tensor(
    codec: Codec,
    t: int,
    shape: tuple[int, ...],
    scale: np.ndarray | None,
    lo: np.ndarray | None,
    chunk: bytes,
) -> Quantized:
    count = int(np.prod(shape, dtype=np.int64))
    if codec.dtype == "fp32":
        values = torch.from_numpy(np.frombuffer(chunk, "<f4").astype(np.float32))
        return Quantized(values.reshape(shape), None, None)
    if codec.dtype == "fp16":
        half = torch.from_numpy(np.frombuffer(chunk, "<f2").astype(np.float16))
        return Quantized(half.reshape(shape), None, None)
    if codec.dtype == "bf16":
        bits = torch.from_numpy(np.frombuffer(chunk, "<i2").astype(np.int16))
        return Quantized(bits.view(torch.bfloat16).reshape(shape), None, None)
    codes = np.frombuffer(chunk, np.uint8)
    if codec.dtype == "int4":
        if count % 2 and codes.size and codes[-1] >> 4:
            raise PayloadError("body", f"tensor {t}: the padding nibble is not zero")
        codes = np.stack([codes & 15, codes >> 4], axis=1).reshape(-1)[:count]
    assert scale is not None and lo is not None
    q = torch.from_numpy(np.array(codes, np.uint8)).reshape(shape)  # a writable copy
    return Quantized(q, torch.from_numpy(scale)[None], torch.from_numpy(lo)[None])


def dequantize(
    values: torch.Tensor, scale: torch.Tensor | None = None, lo: torch.Tensor | None = None
) -> torch.Tensor:
    """The float32 tensor of coded values (:class:`Quantized`): a cast for fp32, fp16 and
    bf16, ``q * scale + lo`` for int8/int4. Tensor operations only (a deployed server
    program runs it), always a new tensor."""
    if scale is None or lo is None:
        return values.to(torch.float32, copy=True)
    return _dequantize(values, scale, lo)


def _dequantize(q: torch.Tensor, scale: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """``q * scale + lo`` in float32; ``scale``, ``lo`` are ``[N, C]`` (C = 1 or dim 1)."""
    return q.to(torch.float32) * _per_value(scale, q.dim()) + _per_value(lo, q.dim())


def _per_value(param: torch.Tensor, rank: int) -> torch.Tensor:
    """``[N, C]`` parameters shaped to broadcast over a ``[N, ...]`` tensor of ``rank``."""
    if param.shape[1] == 1:
        return param.reshape(param.shape[0], *([1] * (rank - 1)))
    return param.reshape(*param.shape, *([1] * (rank - 2)))


def _bytes(values: np.ndarray, dtype: str, n: int) -> np.ndarray:
    """Each sample's values as little-endian bytes, ``[n, bytes]`` uint8."""
    flat = np.ascontiguousarray(values.reshape(n, -1).astype(dtype, copy=False))
    return flat.view(np.uint8).reshape(n, -1)


def _pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """``[n, k]`` 4-bit codes -> ``[n, ceil(k / 2)]`` bytes, the first in the low nibble."""
    if codes.shape[1] % 2:
        codes = np.concatenate([codes, np.zeros((codes.shape[0], 1), np.uint8)], axis=1)
    return codes[:, 0::2] | (codes[:, 1::2] << 4)


def _check(tensors: Sequence[torch.Tensor], *, single: bool) -> list[torch.Tensor]:
    """The tensors as contiguous float32 on the CPU, checked for a shared batch size."""
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    if not tensors:
        raise ValueError("no tensor to code: give at least one")
    if len(tensors) >= 2**16:
        raise ValueError(f"{len(tensors)} tensors: a payload holds at most 65535")
    out = []
    for i, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor) or not 1 <= t.dim() <= MAX_RANK:
            raise ValueError(
                f"tensor {i} must be a tensor of rank 1..{MAX_RANK} with the batch "
                f"first, got {getattr(t, 'shape', type(t).__name__)}"
            )
        if max(t.shape[1:], default=0) >= 2**32:
            raise ValueError(f"tensor {i}: a dimension of {tuple(t.shape)} exceeds 2^32 - 1")
        out.append(t.detach().to("cpu", torch.float32).contiguous())
    n = out[0].shape[0]
    if single and n != 1:
        raise ValueError(
            f"encode codes one sample: batch dimension 1, got {n} (use roundtrip for a batch)"
        )
    if any(t.shape[0] != n for t in out):
        raise ValueError(f"the tensors' batch sizes differ: {[t.shape[0] for t in out]}")
    return out
