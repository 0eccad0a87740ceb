"""How sparse weights are stored, and how many bytes that takes.

The packed format: ``magic (8 bytes) | version (u32) | TOC length (u32) | CRC-32 of
TOC+payload (u32) | TOC (UTF-8 JSON) | payload``, all little-endian, no pickle. A layer
marks its kept weights with a boolean ``weight_mask`` buffer (channel-granular for
convolutions); its weight is stored as the kept values plus, in the ``"indices"`` form,
the kept input-channel indices of each output row, or, in the ``"seed"`` form, only the
seed the pattern was drawn from. The cost model charges :func:`payload_bytes` per layer;
:mod:`dse.nets.sparsity` draws the patterns, trains with them and reads the format back.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import zlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dse.errors import InputError

MASK_BUFFER = "weight_mask"
"""Name of the boolean buffer (same shape as ``weight``) that marks the kept weights."""

SEED_BUFFER = "weight_mask_seed"
"""Name of the 0-d int64 buffer holding the seed the mask was drawn from (for the seed form)."""

PACK_MAGIC = b"DSESPARS"
PACK_VERSION = 1
HEADER = struct.Struct("<8sIII")  # magic, version, TOC length (bytes), CRC-32 of TOC+payload

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
INDEX_DTYPES: tuple[tuple[str, int, torch.dtype], ...] = (
    ("uint8", 1 << 8, torch.uint8),
    ("uint16", 1 << 16, torch.uint16),
    ("uint32", 1 << 32, torch.uint32),
)


Regenerate = Callable[[int, int, int, int, int], list[torch.Tensor]]
"""``(groups, n_out per group, n_in, d_in, seed) -> [groups * n_out, n_in]`` bool patterns
the seed may stand for (one of them must be the layer's)."""


def expand(channel_mask: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Expand a ``[O, I]`` channel mask over the kernel dims of a weight (a new tensor)."""
    extra = len(shape) - 2
    return channel_mask.reshape(*channel_mask.shape, *([1] * extra)).expand(shape).contiguous()


def channel_mask(mask: torch.Tensor) -> torch.Tensor:
    """The ``[O, I]`` channel-level view of a full weight mask (its first kernel position)."""
    return mask.reshape(mask.shape[0], mask.shape[1], -1)[:, :, 0]


def masked_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if m._buffers.get(MASK_BUFFER) is not None}


def degrees_of(mask: torch.Tensor, groups: int) -> tuple[int | None, int | None]:
    """``(d_in, d_out)`` of a channel-granular regular mask, or ``(None, None)`` if irregular."""
    channel = channel_mask(mask)
    if not torch.equal(expand(channel, mask.shape), mask):
        return None, None
    rows = channel.sum(dim=1)
    blocks = channel.reshape(groups, channel.shape[0] // groups, channel.shape[1])
    cols = blocks.sum(dim=1)
    if (
        rows.numel() == 0
        or not bool((rows == rows[0]).all())
        or not bool((cols == cols[0, 0]).all())
    ):
        return None, None
    return int(rows[0]), int(cols[0, 0])


#: Group sizes M tried, in order, when a mask is described as ``"N:M"``.
NM_GROUPS: tuple[int, ...] = (4, 8, 16)


def mask_pattern(mask: torch.Tensor, groups: int = 1) -> str:
    """The sparsity pattern of a weight mask, as a device profile names its kernels.

    ``"dense"`` when every weight is kept; ``"N:M"`` when every run of ``M`` consecutive
    input weights of every output row (for a convolution: input channels at each kernel
    position, the layout sparse tensor cores read) keeps exactly ``N`` (``M`` from
    :data:`NM_GROUPS`, the first that fits); ``"predefined"`` for another regular
    channel-granular pattern (equal counts per row and per column); else ``"unstructured"``.
    """
    mask = mask.detach().cpu().bool()
    if bool(mask.all()):
        return "dense"
    n_in = mask.shape[1]
    rows = mask.movedim(1, -1).reshape(-1, n_in)  # [out x kernel positions, inputs]
    for m in NM_GROUPS:
        if n_in % m or n_in == m:  # one run per row says no more than the row count
            continue
        counts = rows.reshape(rows.shape[0], n_in // m, m).sum(-1)
        n = int(counts.flatten()[0])
        if 0 < n < m and bool((counts == n).all()):
            return f"{n}:{m}"
    d_in, _ = degrees_of(mask, groups)
    return "predefined" if d_in is not None else "unstructured"


def check_form(form: str) -> None:
    if form not in ("indices", "seed"):
        raise InputError(
            "pack_state", "form", f"unknown form {form!r}", fix="use 'indices' or 'seed'"
        )


def index_dtype(n_in: int) -> tuple[str, torch.dtype]:
    for name, limit, dtype in INDEX_DTYPES:
        if n_in <= limit:
            return name, dtype
    raise ValueError(f"{n_in} input channels do not fit uint32 indices")


def implicit_keys(model: nn.Module) -> set[str]:
    """State keys that the packed format never stores raw (masks and their seeds)."""
    keys = set()
    for name, _ in model.named_modules():
        prefix = f"{name}." if name else ""
        keys.update((prefix + MASK_BUFFER, prefix + SEED_BUFFER))
    return keys


def dtype_name(t: torch.Tensor, key: str) -> str:
    name = DTYPE_NAMES.get(t.dtype)
    if name is None:
        raise ValueError(f"{key}: dtype {t.dtype} is not supported by the packed format")
    return name


def raw_bytes(t: torch.Tensor) -> bytes:
    """Little-endian bytes of a tensor in row-major order."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def build(
    model: nn.Module, form: str, *, with_payload: bool, regenerate: Regenerate | None = None
) -> tuple[bytes, list[bytes], int]:
    """The TOC (JSON bytes), the payload chunks (only if ``with_payload``) and the payload size.

    For ``form="seed"``, ``regenerate`` (the pattern generator of :mod:`dse.nets.sparsity`)
    checks that each mask is reproducible from its seed; without it the bytes are counted
    unchecked.
    """
    check_form(form)
    if sys.byteorder != "little":
        raise RuntimeError("the packed format is written on little-endian hosts only")
    masked = masked_modules(model)
    sparse_keys = {(f"{n}." if n else "") + "weight": n for n in masked}
    implicit = implicit_keys(model)
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    size = 0
    for key, tensor in model.state_dict().items():
        if key in implicit:
            continue
        dtype = dtype_name(tensor, key)
        if key not in sparse_keys:
            nbytes = tensor.numel() * tensor.element_size()
            entries.append(
                {
                    "name": key,
                    "kind": "dense",
                    "dtype": dtype,
                    "shape": list(tensor.shape),
                    "nbytes": nbytes,
                }
            )
            if with_payload:
                chunks.append(raw_bytes(tensor))
            size += nbytes
            continue
        module = masked[sparse_keys[key]]
        groups = getattr(module, "groups", 1)
        mask = module._buffers[MASK_BUFFER].cpu()
        d_in, _ = degrees_of(mask, groups)
        if d_in is None:
            raise ValueError(f"{key}: weight_mask is not a channel-granular regular pattern")
        channel = channel_mask(mask)
        seed_t = module._buffers.get(SEED_BUFFER)
        seed = int(seed_t) if seed_t is not None else None
        weight = tensor.cpu()
        if bool(weight.masked_select(~mask).ne(0).any()):
            raise ValueError(f"{key}: nonzero weights outside the mask; call enforce_masks first")
        kernel = math.prod(weight.shape[2:])
        nnz = channel.shape[0] * d_in * kernel
        entry: dict[str, Any] = {
            "name": key,
            "kind": "sparse",
            "form": form,
            "dtype": dtype,
            "shape": list(weight.shape),
            "groups": groups,
            "d_in": d_in,
            "seed": seed,
            "values_nbytes": nnz * weight.element_size(),
        }
        if with_payload:
            chunks.append(raw_bytes(weight.masked_select(mask)))
        size += entry["values_nbytes"]
        if form == "indices":
            index_name, idx_dtype = index_dtype(channel.shape[1])
            entry["index_dtype"] = index_name
            entry["index_nbytes"] = (
                channel.shape[0] * d_in * torch.empty(0, dtype=idx_dtype).element_size()
            )
            if with_payload:
                cols = channel.nonzero()[:, 1].to(torch.int64)
                chunks.append(raw_bytes(cols.to(idx_dtype)))
            size += entry["index_nbytes"]
        else:
            if seed is None:
                raise ValueError(f"{key}: no {SEED_BUFFER} buffer; use form='indices'")
            n_out_g = channel.shape[0] // groups
            if regenerate is not None and not any(
                torch.equal(c, channel)
                for c in regenerate(groups, n_out_g, channel.shape[1], d_in, seed)
            ):
                raise ValueError(
                    f"{key}: the mask is not reproducible from its seed; use form='indices'"
                )
            entry["pattern_crc32"] = zlib.crc32(raw_bytes(channel))
        entries.append(entry)
    toc = json.dumps({"entries": entries}, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return toc, chunks, size


def pack(model: nn.Module, *, form: str = "indices", regenerate: Regenerate | None = None) -> bytes:
    """Serialise every parameter and persistent buffer of ``model``, masked layers compressed.

    Layout: ``magic (8 bytes) | version (u32) | TOC length (u32) | CRC-32 of TOC+payload
    (u32) | TOC (UTF-8 JSON) | payload`` (all little-endian; no pickle). Dense tensors are
    stored raw in their dtype. A masked weight is stored as its kept values (in its dtype,
    row-major order of the mask) plus, for ``form="indices"``, the kept input-channel
    indices of each output row (``d_in`` per row, uint8/uint16/uint32, whichever fits the
    input width), or, for ``form="seed"``, only the pattern's seed and degrees (regenerated
    on load and checked against a CRC-32 of the pattern). Masks themselves are never
    stored raw. Weights outside a mask must be zero (see :func:`dse.nets.sparsity.enforce_masks`).
    """
    toc, chunks, _ = build(model, form, with_payload=True, regenerate=regenerate)
    body = toc + b"".join(chunks)
    return HEADER.pack(PACK_MAGIC, PACK_VERSION, len(toc), zlib.crc32(body)) + body


def stored_bytes(
    model: nn.Module, *, form: str = "indices", regenerate: Regenerate | None = None
) -> int:
    """``len(pack(model, form=form))`` in bytes, without serialising the tensors.

    The cost model uses ``form="indices"``; ``form="seed"`` is the lower bound.
    """
    toc, _, size = build(model, form, with_payload=False, regenerate=regenerate)
    return HEADER.size + len(toc) + size


def payload_bytes(module: nn.Module, *, form: str = "indices") -> int:
    """Bytes of ``module``'s tensors as stored (values, indices, dense tensors), no header.

    The per-layer storage the cost model charges; summed over layers it is
    :func:`stored_bytes` less the file's header and table of contents.
    """
    return build(module, form, with_payload=False)[2]


def dense_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and persistent buffer stored plainly (no masks, no header).

    Each tensor counts ``numel * element_size`` of its own dtype, i.e. 4 bytes per weight
    for a float32 model; masks and mask seeds are excluded.
    """
    implicit = implicit_keys(model)
    return sum(
        t.numel() * t.element_size() for k, t in model.state_dict().items() if k not in implicit
    )
