"""The packed sparse format: how sparse weights are stored, how many bytes that takes, and
reading them back.

The layout: ``magic (8 bytes) | version (u32) | TOC length (u32) | CRC-32 of TOC+payload
(u32) | TOC (UTF-8 JSON) | payload``, all little-endian, no pickle. A layer marks its kept
weights with a boolean ``weight_mask`` buffer (channel-granular for convolutions); its
weight is stored as the kept values plus, in the ``"indices"`` form, the kept input-channel
indices of each output row, or, in the ``"seed"`` form, only the seed the pattern was drawn
from. The cost model charges :func:`payload_bytes` per layer. Drawing a pattern from a
seed is :mod:`dse.nets.sparsity`'s job: the seed form's writer checks, and its reader
regenerates, through the :data:`Regenerate` function that module passes in
(``sparsity.pack_state`` / ``sparsity.unpack_state``).
"""

from __future__ import annotations

import json
import math
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
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
MAX_SEED = 2**63
"""Seeds of patterns lie in ``[0, MAX_SEED)`` (a torch generator takes them whole)."""
PACK_WHERE = "<packed state>"
"""What a reading error names as its file: the bytes may come from anywhere."""
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""The convolutions a pattern may thin (transposed ones are left dense)."""
INDEX_DTYPES: tuple[tuple[str, int, torch.dtype], ...] = (
    ("uint8", 1 << 8, torch.uint8),
    ("uint16", 1 << 16, torch.uint16),
    ("uint32", 1 << 32, torch.uint32),
)


Regenerate = Callable[[int, int, int, int, int], list[torch.Tensor]]
"""``(groups, n_out per group, n_in, d_in, seed) -> [groups * n_out, n_in]`` bool patterns
the seed may stand for (one of them must be the layer's)."""


# --------------------------------------------------------------------------- layers and masks


def is_depthwise(module: nn.Module) -> bool:
    """A convolution with one input channel per group, never thinned at channel granularity."""
    return isinstance(module, CONV_TYPES) and module.groups == module.in_channels


def sparsifiable(module: nn.Module) -> bool:
    """Linear, or a non-transposed, non-depthwise convolution."""
    if isinstance(module, nn.Linear):
        return True
    return isinstance(module, CONV_TYPES) and not is_depthwise(module)


def junction(module: nn.Module) -> tuple[int, int, int]:
    """``(groups, n_out, n_in)`` of a sparsifiable layer (convolutions: channels per group)."""
    if isinstance(module, nn.Linear):
        return 1, module.out_features, module.in_features
    g = module.groups
    return g, module.out_channels // g, module.in_channels // g


def set_buffer(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Register ``value`` as the persistent buffer ``name`` of ``module``, or replace it."""
    if name in module._buffers:
        module._buffers[name] = value
    else:
        module.register_buffer(name, value, persistent=True)


def expand(channel_mask: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Expand a ``[O, I]`` channel mask over the kernel dims of a weight (a new tensor)."""
    extra = len(shape) - 2
    return channel_mask.reshape(*channel_mask.shape, *([1] * extra)).expand(shape).contiguous()


def channel_mask(mask: torch.Tensor) -> torch.Tensor:
    """The ``[O, I]`` channel-level view of a full weight mask (its first kernel position)."""
    return mask.reshape(mask.shape[0], mask.shape[1], -1)[:, :, 0]


def masked_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Module name -> module, for every module carrying a ``weight_mask`` buffer."""
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


# --------------------------------------------------------------------------- writing


def check_form(form: str) -> None:
    """Refuse a storage form other than ``"indices"`` and ``"seed"``."""
    if form not in ("indices", "seed"):
        raise InputError(
            "pack_state", "form", f"unknown form {form!r}", fix="use 'indices' or 'seed'"
        )


def index_dtype(n_in: int) -> tuple[str, torch.dtype]:
    """The narrowest unsigned dtype (name, torch dtype) that holds ``n_in`` column indices."""
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
    """The format's name of ``t``'s dtype; a dtype it cannot store is a ValueError."""
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
        if key in sparse_keys:
            module = masked[sparse_keys[key]]
            entry, parts, nbytes = _sparse_entry(
                key, tensor, module, dtype, form, with_payload=with_payload, regenerate=regenerate
            )
        else:
            entry, parts, nbytes = _dense_entry(key, tensor, dtype, with_payload=with_payload)
        entries.append(entry)
        chunks += parts
        size += nbytes
    toc = json.dumps({"entries": entries}, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return toc, chunks, size


def _dense_entry(
    key: str, tensor: torch.Tensor, dtype: str, *, with_payload: bool
) -> tuple[dict[str, Any], list[bytes], int]:
    """A tensor stored raw: its TOC entry, its payload chunks and its payload bytes."""
    nbytes = tensor.numel() * tensor.element_size()
    entry = {
        "name": key,
        "kind": "dense",
        "dtype": dtype,
        "shape": list(tensor.shape),
        "nbytes": nbytes,
    }
    return entry, [raw_bytes(tensor)] if with_payload else [], nbytes


def _sparse_entry(
    key: str,
    tensor: torch.Tensor,
    module: nn.Module,
    dtype: str,
    form: str,
    *,
    with_payload: bool,
    regenerate: Regenerate | None,
) -> tuple[dict[str, Any], list[bytes], int]:
    """A masked weight stored as its kept values and its indices or seed: its TOC entry,
    its payload chunks (values, then indices) and its payload bytes."""
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
    nnz = channel.shape[0] * d_in * math.prod(weight.shape[2:])
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
    chunks = [raw_bytes(weight.masked_select(mask))] if with_payload else []
    if form == "indices":
        index_name, idx_dtype = index_dtype(channel.shape[1])
        entry["index_dtype"] = index_name
        entry["index_nbytes"] = (
            channel.shape[0] * d_in * torch.empty(0, dtype=idx_dtype).element_size()
        )
        if with_payload:
            cols = channel.nonzero()[:, 1].to(torch.int64)
            chunks.append(raw_bytes(cols.to(idx_dtype)))
        return entry, chunks, entry["values_nbytes"] + entry["index_nbytes"]
    if seed is None:
        raise ValueError(f"{key}: no {SEED_BUFFER} buffer; use form='indices'")
    n_out_g = channel.shape[0] // groups
    if regenerate is not None and not any(
        torch.equal(c, channel) for c in regenerate(groups, n_out_g, channel.shape[1], d_in, seed)
    ):
        raise ValueError(f"{key}: the mask is not reproducible from its seed; use form='indices'")
    entry["pattern_crc32"] = zlib.crc32(raw_bytes(channel))
    return entry, chunks, entry["values_nbytes"]


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


# --------------------------------------------------------------------------- reading


def _bad(field: str, reason: str) -> InputError:
    return InputError(
        PACK_WHERE,
        field,
        reason,
        fix="re-export it with pack_state from a model of the same architecture",
    )


def _int_field(entry: dict[str, Any], field: str, key: str) -> int:
    value = entry.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"entries.{key}.{field}", f"must be a non-negative integer, got {value!r}")
    return value


class _Payload:
    """The payload after the table of contents, read entry by entry, in order."""

    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.offset = offset

    def take(self, nbytes: int, key: str, dtype: torch.dtype, shape: list[int]) -> torch.Tensor:
        """The next ``nbytes`` as a tensor of ``dtype`` and ``shape`` (a copy)."""
        start = self.offset
        if start + nbytes > len(self.data):
            raise _bad(f"entries.{key}", "payload truncated")
        self.offset += nbytes
        raw = np.frombuffer(self.data, dtype=np.uint8, count=nbytes, offset=start).copy()
        return torch.from_numpy(raw).view(dtype).reshape(shape)

    def finish(self) -> None:
        """Refuse bytes left over after the last entry."""
        if self.offset != len(self.data):
            left = len(self.data) - self.offset
            raise _bad("payload", f"{left} trailing bytes after the last entry")


@dataclass(frozen=True)
class _Sparse:
    """A masked weight read back: the layer, its weight (zeros outside the mask), the full
    mask and the seed the pattern was drawn from (None in the indices form without one)."""

    module: nn.Module
    weight: torch.Tensor
    mask: torch.Tensor
    seed: int | None


def unpack(data: bytes, model: nn.Module, *, regenerate: Regenerate) -> None:
    """Restore a :func:`pack` result into ``model`` (same architecture), bit-exactly.

    Masks (``weight_mask`` and ``weight_mask_seed`` buffers) are registered, replaced or
    removed so the model's masks match the packed state, so a freshly built dense model
    works. ``regenerate`` draws the patterns the seed form stands for. Everything is
    validated before the model is touched; corrupt, truncated or mismatched data raises
    ``InputError("<packed state>", field, reason)``.
    """
    data, entries, payload_start = _read_toc(data)
    state = model.state_dict(keep_vars=True)
    implicit = implicit_keys(model)
    _check_names(entries, [k for k in state if k not in implicit])
    modules = dict(model.named_modules())
    payload = _Payload(data, payload_start)
    dense: dict[str, torch.Tensor] = {}
    sparse: dict[str, _Sparse] = {}
    for entry in entries:
        key = entry["name"]
        target = state[key]
        dtype = _checked_dtype(entry, key, target)
        kind = entry.get("kind")
        if kind == "dense":
            dense[key] = _dense_value(entry, key, target, dtype, payload)
        elif kind == "sparse":
            module = _sparse_layer(key, modules)
            sparse[key] = _sparse_value(entry, key, target, dtype, module, payload, regenerate)
        else:
            raise _bad(f"entries.{key}.kind", f"unknown kind {kind!r}")
    payload.finish()
    _restore(model, state, dense, sparse)


def _read_toc(data: object) -> tuple[bytes, list[dict[str, Any]], int]:
    """The bytes, the table of contents' entries and where the payload starts; the header,
    version and CRC-32 checked."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _bad("data", f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < HEADER.size:
        raise _bad("header", f"truncated: {len(data)} bytes, a header needs {HEADER.size}")
    magic, version, toc_len, crc = HEADER.unpack_from(data, 0)
    if magic != PACK_MAGIC:
        raise _bad("magic", f"not a dse packed state (magic {magic!r})")
    if version != PACK_VERSION:
        raise _bad("version", f"version {version} is not supported (this dse reads {PACK_VERSION})")
    body = data[HEADER.size :]
    if toc_len > len(body):
        raise _bad(
            "toc", f"truncated: the table of contents needs {toc_len} bytes, {len(body)} remain"
        )
    if zlib.crc32(body) != crc:
        raise _bad("checksum", "CRC-32 mismatch: the data is corrupt or truncated")
    try:
        toc = json.loads(body[:toc_len].decode("utf-8"))
        entries = toc["entries"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise TypeError("entries is not a list of objects")
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad("toc", f"unreadable table of contents ({exc})") from exc
    return data, entries, HEADER.size + toc_len


def _check_names(entries: list[dict[str, Any]], expected: list[str]) -> None:
    """Every stored state key of the model once, and nothing else."""
    names = [e.get("name") for e in entries]
    if sorted(map(str, names)) != sorted(expected) or len(set(names)) != len(names):
        missing = sorted(set(expected) - set(map(str, names)))
        extra = sorted(set(map(str, names)) - set(expected))
        raise _bad(
            "entries", f"does not match the model (missing {missing[:5]}, unexpected {extra[:5]})"
        )


def _checked_dtype(entry: dict[str, Any], key: str, target: torch.Tensor) -> torch.dtype:
    """The entry's dtype, after checking dtype and shape against the model's tensor."""
    dtype = DTYPES.get(entry.get("dtype"))
    if dtype is None or dtype != target.dtype:
        raise _bad(
            f"entries.{key}.dtype",
            f"{entry.get('dtype')!r} does not match the model's {target.dtype}",
        )
    if entry.get("shape") != list(target.shape):
        raise _bad(
            f"entries.{key}.shape",
            f"{entry.get('shape')!r} does not match the model's {list(target.shape)}",
        )
    return dtype


def _dense_value(
    entry: dict[str, Any], key: str, target: torch.Tensor, dtype: torch.dtype, payload: _Payload
) -> torch.Tensor:
    """A raw tensor's value."""
    nbytes = _int_field(entry, "nbytes", key)
    if nbytes != target.numel() * target.element_size():
        raise _bad(f"entries.{key}.nbytes", f"{nbytes} does not fit the shape")
    value = payload.take(nbytes, key, dtype, entry["shape"])
    if dtype == torch.bool and bool((value.view(torch.uint8) > 1).any()):
        raise _bad(f"entries.{key}", "invalid bool bytes")
    return value


def _sparse_layer(key: str, modules: dict[str, nn.Module]) -> nn.Module:
    """The layer whose weight a sparse entry is: a Linear or a non-depthwise conv."""
    module_name = key[: -len(".weight")] if key.endswith(".weight") else ""
    module = modules.get(module_name)
    if (
        module is None
        or key != (f"{module_name}." if module_name else "") + "weight"
        or not sparsifiable(module)
    ):
        raise _bad(
            f"entries.{key}",
            "a sparse entry must be the weight of a Linear or non-depthwise conv layer",
        )
    return module


def _sparse_value(
    entry: dict[str, Any],
    key: str,
    target: torch.Tensor,
    dtype: torch.dtype,
    module: nn.Module,
    payload: _Payload,
    regenerate: Regenerate,
) -> _Sparse:
    """A masked weight: its degrees and seed checked, its values read, its pattern read
    (indices form) or regenerated (seed form)."""
    groups = getattr(module, "groups", 1)
    if entry.get("groups") != groups:
        raise _bad(
            f"entries.{key}.groups",
            f"{entry.get('groups')!r} does not match the model's {groups}",
        )
    _, n_out_g, n_in = junction(module)
    n_rows = n_out_g * groups
    d_in = _int_field(entry, "d_in", key)
    if not 1 <= d_in <= n_in or (n_out_g * d_in) % n_in != 0:
        raise _bad(
            f"entries.{key}.d_in",
            f"{d_in} is not a valid degree for {n_in} inputs -> {n_out_g} outputs",
        )
    seed = entry.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED
    ):
        raise _bad(f"entries.{key}.seed", f"invalid seed {seed!r}")
    kernel = math.prod(target.shape[2:])
    values_nbytes = _int_field(entry, "values_nbytes", key)
    if values_nbytes != n_rows * d_in * kernel * target.element_size():
        raise _bad(f"entries.{key}.values_nbytes", f"{values_nbytes} does not fit the degrees")
    values = payload.take(values_nbytes, key, dtype, [-1])
    form = entry.get("form")
    if form == "indices":
        channel = _indices_pattern(entry, key, payload, groups, n_out_g, n_in, d_in)
    elif form == "seed":
        if seed is None:
            raise _bad(f"entries.{key}.seed", "the seed form needs a seed")
        channel = _seed_pattern(entry, key, regenerate(groups, n_out_g, n_in, d_in, seed))
    else:
        raise _bad(f"entries.{key}.form", f"unknown form {form!r}")
    mask = expand(channel, target.shape)
    weight = torch.zeros(target.shape, dtype=dtype)
    weight.masked_scatter_(mask, values)
    return _Sparse(module, weight, mask, seed)


def _indices_pattern(
    entry: dict[str, Any],
    key: str,
    payload: _Payload,
    groups: int,
    n_out_g: int,
    n_in: int,
    d_in: int,
) -> torch.Tensor:
    """The channel pattern of the indices form, from its stored column indices: in range,
    increasing along each row, and regular (equal out-degrees in each group)."""
    n_rows = n_out_g * groups
    index_name, idx_dtype = index_dtype(n_in)
    if entry.get("index_dtype") != index_name:
        raise _bad(
            f"entries.{key}.index_dtype",
            f"expected {index_name!r} for {n_in} inputs, got {entry.get('index_dtype')!r}",
        )
    index_nbytes = _int_field(entry, "index_nbytes", key)
    if index_nbytes != n_rows * d_in * torch.empty(0, dtype=idx_dtype).element_size():
        raise _bad(f"entries.{key}.index_nbytes", f"{index_nbytes} does not fit the degrees")
    cols = payload.take(index_nbytes, key, idx_dtype, [n_rows, d_in]).to(torch.int64)
    if bool((cols >= n_in).any()) or (d_in > 1 and bool((cols.diff(dim=1) <= 0).any())):
        raise _bad(f"entries.{key}", "column indices out of range or not increasing")
    channel = torch.zeros(n_rows, n_in, dtype=torch.bool)
    channel.scatter_(1, cols, True)
    col_sums = channel.reshape(groups, n_out_g, n_in).sum(dim=1)
    if not bool((col_sums == n_out_g * d_in // n_in).all()):
        raise _bad(f"entries.{key}", "the pattern is not regular (unequal out-degrees)")
    return channel


def _seed_pattern(entry: dict[str, Any], key: str, candidates: list[torch.Tensor]) -> torch.Tensor:
    """The one of the patterns a seed regenerates whose CRC-32 the entry stored."""
    for channel in candidates:
        if zlib.crc32(raw_bytes(channel)) == entry.get("pattern_crc32"):
            return channel
    raise _bad(
        f"entries.{key}.pattern_crc32",
        "the pattern regenerated from the seed differs from the packed one "
        "(was it packed with another torch version?)",
    )


def _restore(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    dense: dict[str, torch.Tensor],
    sparse: dict[str, _Sparse],
) -> None:
    """Copy the values read into the model and make its masks those of the packed state."""
    with torch.no_grad():
        for key, value in dense.items():
            state[key].copy_(value)
        for key, s in sparse.items():
            state[key].copy_(s.weight)
            device = state[key].device
            set_buffer(s.module, MASK_BUFFER, s.mask.to(device))
            if s.seed is None:
                s.module._buffers.pop(SEED_BUFFER, None)
            else:
                set_buffer(
                    s.module, SEED_BUFFER, torch.tensor(s.seed, dtype=torch.int64, device=device)
                )
    sparse_modules = {id(s.module) for s in sparse.values()}
    for module in masked_modules(model).values():
        if id(module) not in sparse_modules:  # packed as dense: drop the stale mask
            module._buffers.pop(MASK_BUFFER, None)
            module._buffers.pop(SEED_BUFFER, None)
