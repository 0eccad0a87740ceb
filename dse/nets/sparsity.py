"""Predefined sparsity: connection patterns fixed before training, and their packing.

A junction between ``n_in`` inputs and ``n_out`` outputs keeps exactly ``d_out`` outgoing
connections per input neuron and exactly ``d_in`` incoming connections per output neuron,
``n_in * d_out == n_out * d_in``, density ``rho = d_out / n_out = d_in / n_in`` (Dey, Huang,
Chugg, Beerel; used by Capogrosso et al. 2024). The pattern is drawn from a seed before
training; weights outside it are zero from initialisation on and stay zero, because
:func:`mask_gradients` zeroes their gradients before each optimiser step and
:func:`enforce_masks` zeroes the weights after it.

Granularity: a ``Linear`` is masked per weight. A convolution is masked per
(output channel, input channel) pair, the same regular pattern expanded over the kernel, so
``d_in`` and ``d_out`` of a convolution count *channels*; its fan-in is
``d_in * kernel_numel``. Grouped convolutions get one independent regular pattern per group
(``d_in``, ``d_out`` are then per group); depthwise convolutions (``groups ==
in_channels``, the ``depthwise_conv`` kind of :mod:`dse.costmodel.kinds`) are always left dense,
since a single input channel per group cannot be thinned at channel granularity.
Transposed convolutions are left dense.

N:M sparsity (``method = "nm"``): each output row keeps exactly ``N`` of every ``M``
consecutive input weights (input channels for a convolution, the same at every kernel
position: the layout sparse tensor cores read), ``N / M`` the density, ``M`` the
first of 4, 8, 16 that makes ``N`` whole (density 1/2 is 2:4). Like the predefined
pattern it is fixed before training and drawn from a seed; which ``N`` of each run a
row keeps rotates over the rows, so every input keeps the same out-degree too (the
pattern is regular, packed like a predefined one). A layer whose input width is not a
multiple of ``M`` stays dense.

Storage: :func:`pack_state` writes a real compressed file format (magic header, version,
CRC-32, JSON table of contents, raw little-endian payload) and :func:`unpack_state` reads
it back bit-exactly; the format itself is :mod:`dse.costmodel.packing`'s, and this module
hands it the pattern generator the seed form needs. The cost model counts stored bytes in
the ``"indices"`` form (values plus explicit column indices): a deployment that cannot run
our seeded generator on the device still needs the indices. The ``"seed"`` form (values
plus the pattern's seed) is reported alongside as the lower bound.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dse.costmodel import packing
from dse.errors import InputError

# The format's names, for the users of this module (deploy, the tests) that read masks.
MASK_BUFFER = packing.MASK_BUFFER
SEED_BUFFER = packing.SEED_BUFFER
PACK_MAGIC = packing.PACK_MAGIC
PACK_VERSION = packing.PACK_VERSION
dense_bytes = packing.dense_bytes

DENSITY_TOL = 1e-9
"""A requested density counts as met when ``|d_out / n_out - density| <= DENSITY_TOL``."""

_MIX_ROUNDS = 12  # rounds of degree-preserving switches applied to the shuffled band pattern
_KERAS_TRUNC_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]

_WEIGHTED_TYPES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
WEIGHTED_TYPES = _WEIGHTED_TYPES
"""The layers whose weights count in a density: Linear and every convolution."""


# --------------------------------------------------------------------------- degrees


def _check_sizes(n_out: int, n_in: int, where: str) -> None:
    for field, n in (("n_out", n_out), ("n_in", n_in)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(where, field, f"must be a positive integer, got {n!r}")


def _check_density(density: float, where: str, field: str) -> None:
    ok = isinstance(density, (int, float)) and not isinstance(density, bool)
    if not ok or not math.isfinite(density) or not 0.0 < density <= 1.0:
        raise InputError(where, field, f"must be a number in (0, 1], got {density!r}")


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError("seed", "seed", f"must be an integer, got {seed!r}")


def _d_out_step(n_out: int, n_in: int) -> int:
    """Smallest ``d_out`` with ``n_in * d_out`` divisible by ``n_out``; the valid ones are its
    multiples."""
    return n_out // math.gcd(n_out, n_in)


def valid_densities(n_out: int, n_in: int) -> list[float]:
    """Every density a junction of ``n_in`` inputs -> ``n_out`` outputs can meet exactly, ascending.

    These are ``d_out / n_out`` for ``d_out`` in ``1..n_out`` with ``n_in * d_out`` divisible
    by ``n_out`` (so that ``d_in`` is an integer); ``1.0`` is always among them.
    """
    _check_sizes(n_out, n_in, "valid_densities")
    step = _d_out_step(n_out, n_in)
    return [d / n_out for d in range(step, n_out + 1, step)]


def _degrees(n_out: int, n_in: int, density: float, *, where: str, field: str) -> tuple[int, int]:
    _check_sizes(n_out, n_in, where)
    _check_density(density, where, field)
    step = _d_out_step(n_out, n_in)
    d_out = round(density * n_out)
    if d_out >= 1 and d_out % step == 0 and abs(d_out / n_out - density) <= DENSITY_TOL:
        return n_in * d_out // n_out, d_out
    valid = list(range(step, n_out + 1, step))
    below = [d for d in valid if d / n_out < density]
    above = [d for d in valid if d / n_out > density]
    near = below[-1:] + above[:1]
    if len(near) < 2:  # the request lies outside the valid range: take the two closest
        near = sorted(sorted(valid, key=lambda d: abs(d / n_out - density))[:2])
    names = " or ".join(f"{d / n_out!r} (d_out={d})" for d in near)
    raise InputError(
        where,
        field,
        f"{density!r} cannot be met exactly by a junction of {n_in} inputs -> {n_out} outputs "
        f"(d_out = density * {n_out} must be a whole multiple of {step})",
        fix=f"nearest valid densit{'ies' if len(near) > 1 else 'y'}: {names}",
    )


def degrees_for(
    n_out: int, n_in: int, density: float, *, where: str = "density"
) -> tuple[int, int]:
    """``(d_in, d_out)`` of a junction of ``n_in`` inputs -> ``n_out`` outputs at ``density``.

    ``d_in`` counts the incoming connections of each output, ``d_out`` the outgoing ones of
    each input. A density that no integer degrees meet within :data:`DENSITY_TOL` raises
    :class:`InputError` (at ``where``) naming the two nearest valid densities.
    """
    return _degrees(n_out, n_in, density, where=where, field="density")


# --------------------------------------------------------------------------- patterns


def _generator(seed: int) -> torch.Generator:
    """A CPU generator seeded locally; the global RNG is never touched."""
    _check_seed(seed)
    g = torch.Generator(device="cpu")
    g.manual_seed(seed % packing.MAX_SEED)
    return g


def layer_seed(plan_seed: int, name: str) -> int:
    """Seed of one layer's pattern: a hash-free, reproducible mix of the plan seed and its name."""
    return (plan_seed * 1000003 + zlib.crc32(name.encode("utf-8"))) % packing.MAX_SEED


def _switch_round(idx: torch.Tensor, mask: torch.Tensor, g: torch.Generator) -> None:
    """One round of degree-preserving switches, in place.

    Rows are paired at random; within a pair (A, B) the positions of A are matched to a
    random permutation of the positions of B, and a matched pair ``(a, b)`` with ``a`` only
    in A and ``b`` only in B is swapped with probability 1/2 (swapping all of them would only
    exchange the two rows' exclusive parts wholesale). So the columns that A and B do not
    share are re-split between them at random. Every row and column keeps its degree and no
    row gets a column twice.
    """
    n_out, d_in = idx.shape
    half = n_out // 2
    if half == 0:
        return
    perm = torch.randperm(n_out, generator=g)
    r1, r2 = perm[:half], perm[half : 2 * half]
    k2 = torch.rand(half, d_in, generator=g).argsort(dim=1)
    c1 = idx[r1]
    c2 = idx[r2].gather(1, k2)
    coin = torch.rand(half, d_in, generator=g) < 0.5
    swap = coin & ~mask[r1[:, None], c2] & ~mask[r2[:, None], c1]
    idx[r1] = torch.where(swap, c2, c1)
    idx[r2] = idx[r2].scatter(1, k2, torch.where(swap, c1, c2))
    mask.zero_()
    mask.scatter_(1, idx, True)


def _regular_pattern(n_out: int, n_in: int, d_in: int, g: torch.Generator) -> torch.Tensor:
    """Random bool ``[n_out, n_in]`` pattern, ``d_in`` Trues per row, equal counts per column.

    Start from the cyclic band (row ``r`` takes columns ``r*d_in .. r*d_in+d_in-1`` modulo
    ``n_in``: the edge sequence wraps exactly ``d_out`` times, so every column gets
    ``d_out``), permute its rows and columns, then mix it with switch rounds so that, unlike
    the bare band, no two outputs are forced to share the same inputs.
    """
    if d_in == n_in:
        return torch.ones(n_out, n_in, dtype=torch.bool)
    band = (torch.arange(n_out)[:, None] * d_in + torch.arange(d_in)[None, :]) % n_in
    col_perm = torch.randperm(n_in, generator=g)
    row_perm = torch.randperm(n_out, generator=g)
    idx = col_perm[band][row_perm].contiguous()
    mask = torch.zeros(n_out, n_in, dtype=torch.bool)
    mask.scatter_(1, idx, True)
    for _ in range(_MIX_ROUNDS):
        _switch_round(idx, mask, g)
    return mask


def predefined_mask(n_out: int, n_in: int, density: float, *, seed: int) -> torch.Tensor:
    """Bool ``[n_out, n_in]`` predefined pattern: ``d_in`` Trues per row, ``d_out`` per column.

    Drawn from a local generator seeded with ``seed``: the same seed gives the same pattern,
    different seeds give (almost surely) different ones. Raises :class:`InputError` when
    ``density`` cannot be met exactly (see :func:`degrees_for`).
    """
    d_in, _ = degrees_for(n_out, n_in, density)
    return _regular_pattern(n_out, n_in, d_in, _generator(seed))


def nm_of(density: float) -> tuple[int, int] | None:
    """``(N, M)`` of the N:M pattern with density ``N / M`` (``M`` in 4, 8, 16, the first
    that makes ``N`` whole), or None when there is none."""
    for m in packing.NM_GROUPS:
        n = round(density * m)
        if 1 <= n < m and abs(n / m - density) <= DENSITY_TOL:
            return n, m
    return None


def _nm_fits(n_out: int, n_in: int, n: int, m: int) -> bool:
    """Whether a junction takes an N:M pattern that is regular (equal column counts)."""
    return n_in % m == 0 and n_out % (m // math.gcd(n, m)) == 0


def nm_mask(n_out: int, n_in: int, n: int, m: int, g: torch.Generator) -> torch.Tensor:
    """Bool ``[n_out, n_in]`` N:M pattern: every row keeps ``n`` of every ``m`` consecutive
    columns. Row ``r`` keeps offsets ``r*n .. r*n+n-1`` (mod ``m``) of each run, so the
    kept offsets rotate and every column is kept by the same number of rows; the rows and
    each run's columns are then permuted from ``g``."""
    if not _nm_fits(n_out, n_in, n, m):
        raise InputError(
            "sparsity",
            "nm",
            f"a junction of {n_in} inputs -> {n_out} outputs takes no regular {n}:{m} pattern",
            f"inputs must be a multiple of {m}, outputs of {m // math.gcd(n, m)}",
        )
    offsets = (torch.arange(n_out)[:, None] * n + torch.arange(n)[None, :]) % m  # [n_out, n]
    block = torch.zeros(n_out, m, dtype=torch.bool)
    block.scatter_(1, offsets, True)
    block = block[torch.randperm(n_out, generator=g)]
    runs = n_in // m
    perms = torch.stack([torch.randperm(m, generator=g) for _ in range(runs)])  # [runs, m]
    cols = (perms + torch.arange(runs)[:, None] * m).reshape(-1)  # run-local shuffles
    mask = torch.zeros(n_out, n_in, dtype=torch.bool)
    mask[:, cols] = block.repeat(1, runs)
    return mask


# --------------------------------------------------------------------------- layers


def _pattern_for(groups: int, n_out: int, n_in: int, d_in: int, g: torch.Generator) -> torch.Tensor:
    """Channel-level bool ``[groups * n_out, n_in]`` pattern: one block per group, drawn
    from ``g`` (``_generator(layer_seed)``: the seed form regenerates it this way)."""
    return torch.cat([_regular_pattern(n_out, n_in, d_in, g) for _ in range(groups)], dim=0)


@dataclass(frozen=True)
class SparsityPlan:
    """Which layers get predefined sparsity, at which density, from which seed.

    ``method`` is ``"predefined"`` or ``"nm"`` (N:M) when ``layers`` is non-empty, else
    ``"dense"``;
    ``density`` is the requested global density; ``layers`` maps module name -> density
    applied (sparsified layers only, in the model's module order).
    """

    method: str
    density: float
    seed: int
    layers: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", dict(self.layers))
        if self.method not in ("predefined", "nm", "dense"):
            raise InputError(
                "plan",
                "method",
                f"unknown method {self.method!r}",
                fix="use 'predefined', 'nm' or 'dense'",
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, e.g. for a cache key."""
        return {
            "method": self.method,
            "density": self.density,
            "seed": self.seed,
            "layers": dict(self.layers),
        }


def _excluded(name: str, exclude: tuple[str, ...]) -> bool:
    return any(name == e or name.startswith(e + ".") for e in exclude)


def plan_sparsity(
    model: nn.Module,
    density: float,
    *,
    seed: int,
    exclude: Iterable[str] = (),
    overrides: Mapping[str, float] | None = None,
    strict: bool = False,
    method: str = "predefined",
) -> SparsityPlan:
    """Choose the layers to sparsify at ``density`` (a fraction of weights kept, in (0, 1]).

    Every ``Linear`` and non-depthwise convolution is chosen unless its name is in
    ``exclude`` (a name excludes that module and everything under ``name.``; the caller
    passes exit heads and the final classifier) or ``density`` cannot be met exactly for it
    (it then stays dense; with ``strict=True`` the :class:`InputError` is raised instead).
    ``overrides`` sets a per-layer density that must be exact and takes precedence over
    ``exclude`` (an override of 1.0 keeps that layer dense). ``density == 1.0`` with no
    overrides below 1 gives an empty plan with method ``"dense"``.

    ``method="nm"`` plans N:M patterns (:func:`nm_of` of ``density``) instead: a layer
    whose junction takes no regular N:M pattern stays dense; no overrides.
    """
    _check_density(density, "density", "density")
    if method == "nm":
        return _plan_nm(model, density, seed=seed, exclude=exclude, strict=strict)
    _check_seed(seed)
    modules = dict(model.named_modules())
    excl = _checked_exclude(exclude, modules)
    eligible = {n: m for n, m in modules.items() if packing.sparsifiable(m)}
    over = dict(overrides or {})
    for n in over:
        if n not in eligible:
            raise InputError(
                "overrides",
                str(n),
                "is not a sparsifiable layer (Linear or non-depthwise conv)",
                fix=f"sparsifiable layers: {_name_list(eligible)}",
            )
    layers: dict[str, float] = {}
    for name, module in eligible.items():
        _, n_out, n_in = packing.junction(module)
        if name in over:
            d_in, _ = _degrees(n_out, n_in, over[name], where="overrides", field=name)
            if d_in < n_in:
                layers[name] = float(over[name])
            continue
        if _excluded(name, excl) or density == 1.0:
            continue
        try:
            d_in, _ = _degrees(n_out, n_in, density, where="density", field=f"layer {name!r}")
        except InputError:
            if strict:
                raise
            continue
        layers[name] = float(density)
    return SparsityPlan(
        method="predefined" if layers else "dense", density=float(density), seed=seed, layers=layers
    )


def _plan_nm(
    model: nn.Module, density: float, *, seed: int, exclude: Iterable[str], strict: bool
) -> SparsityPlan:
    _check_seed(seed)
    nm = nm_of(density)
    if nm is None and density < 1.0:
        raise InputError(
            "density",
            "density",
            f"{density!r} is no N:M density",
            "use N/M with M = 4, 8 or 16 (0.5 is 2:4, 0.25 is 1:4, 0.125 is 1:8)",
        )
    modules = dict(model.named_modules())
    excl = _checked_exclude(exclude, modules)
    layers: dict[str, float] = {}
    for name, module in modules.items():
        if nm is None or not packing.sparsifiable(module) or _excluded(name, excl):
            continue
        _, n_out, n_in = packing.junction(module)
        if _nm_fits(n_out, n_in, *nm):
            layers[name] = float(density)
        elif strict:
            raise InputError(
                "density",
                f"layer {name!r}",
                f"{n_in} inputs -> {n_out} outputs take no regular {nm[0]}:{nm[1]} pattern",
                f"inputs must be a multiple of {nm[1]}",
            )
    return SparsityPlan(
        method="nm" if layers else "dense", density=float(density), seed=seed, layers=layers
    )


def _checked_exclude(exclude: Iterable[str], modules: Mapping[str, nn.Module]) -> tuple[str, ...]:
    """The names to keep dense, each the name of a module of the model."""
    excl = tuple(exclude)
    for e in excl:
        if not isinstance(e, str) or e not in modules:
            raise InputError(
                "exclude",
                str(e),
                "names no module of the model",
                fix=f"known modules: {_name_list(modules)}",
            )
    return excl


def _name_list(names: Iterable[str], limit: int = 20) -> str:
    shown = [repr(n) for n in names]
    more = len(shown) - limit
    return ", ".join(shown[:limit]) + (f", ... ({more} more)" if more > 0 else "")


INITS = ("auto", "he", "keep")


def apply_sparsity(
    model: nn.Module, plan: SparsityPlan, *, init: str = "auto"
) -> dict[str, torch.Tensor]:
    """Draw each planned layer's mask, register it, and initialise that layer's weight.

    Each mask comes from :func:`layer_seed` ``(plan.seed, name)`` and is registered as the
    persistent bool buffer ``weight_mask`` (so ``state_dict`` carries it) next to the 0-d
    int64 buffer ``weight_mask_seed``. Weights outside the mask are set to exactly 0.

    ``init`` decides the kept weights: ``he`` redraws them He-normal like the paper's Keras
    code (normal truncated at 2 std, variance ``2 / fan_in``) with the fan-in of the
    *sparse* layer, ``d_in * kernel_numel``, so activations keep their variance (from the
    layer's local generator: the result depends only on the plan); ``keep`` leaves the
    model's own init. ``auto`` (default) uses ``he`` for linear layers and ``keep`` for
    convolutions: a conv followed by batch norm (every conv of the zoo) is scale-invariant,
    and weights 3-7x larger than the dense init only shrink AdamW's effective step
    (``benchmarks/sparsity.py --cases vgg-s/shapes --densities 1/4``, 3 seeds, validation
    accuracy: 84.15% with ``--init he``, 88.00% with the default ``auto``; dense 91.04%).
    Biases are left as the model set them; layers not in the plan are untouched. Returns
    module name -> mask (same shape as its weight).
    """
    if init not in INITS:
        raise InputError("sparsity", "init", f"unknown init {init!r}", f"use one of {INITS}")
    modules = dict(model.named_modules())
    masks: dict[str, torch.Tensor] = {}
    for name, density in plan.layers.items():
        module = modules.get(name)
        if module is None or not packing.sparsifiable(module):
            raise InputError(
                "plan",
                name,
                "is not a sparsifiable layer of this model",
                fix=f"sparsifiable layers: "
                f"{_name_list(n for n, m in modules.items() if packing.sparsifiable(m))}",
            )
        groups, n_out, n_in = packing.junction(module)
        seed = layer_seed(plan.seed, name)
        g = _generator(seed)  # draws the pattern, then (He init) the values
        nm = nm_of(density) if plan.method == "nm" else None
        if nm is not None:
            d_in = n_in * nm[0] // nm[1]
            channel = torch.cat([nm_mask(n_out, n_in, *nm, g) for _ in range(groups)], dim=0)
        else:
            d_in, _ = _degrees(n_out, n_in, density, where="plan", field=name)
            channel = _pattern_for(groups, n_out, n_in, d_in, g)
        weight = module.weight
        mask = packing.expand(channel, weight.shape)
        kernel = math.prod(weight.shape[2:])
        redraw = init == "he" or (init == "auto" and isinstance(module, nn.Linear))
        if redraw:
            std = math.sqrt(2.0 / (d_in * kernel)) / _KERAS_TRUNC_STD
            values = torch.empty(weight.shape, dtype=torch.float32)
            nn.init.trunc_normal_(values, 0.0, std, -2.0 * std, 2.0 * std, generator=g)
        else:
            values = weight.detach().clone()
        values.masked_fill_(~mask, 0.0)
        with torch.no_grad():
            weight.copy_(values)
        mask = mask.to(weight.device)
        packing.set_buffer(module, packing.MASK_BUFFER, mask)
        packing.set_buffer(
            module, packing.SEED_BUFFER, torch.tensor(seed, dtype=torch.int64, device=weight.device)
        )
        masks[name] = mask
    return masks


def enforce_masks(model: nn.Module) -> None:
    """Set every weight outside its ``weight_mask`` to exactly +0.0; call after each step."""
    with torch.no_grad():
        for module in packing.masked_modules(model).values():
            module.weight.masked_fill_(~module._buffers[packing.MASK_BUFFER], 0.0)


def mask_gradients(model: nn.Module) -> None:
    """Zero the gradients of weights outside their mask; call after ``backward``, before the step.

    With zero gradients Adam's moments stay zero for those weights, and decoupled weight
    decay (AdamW) keeps a zero weight at zero, so pruned weights never move.
    """
    with torch.no_grad():
        for module in packing.masked_modules(model).values():
            grad = module.weight.grad
            if grad is not None:
                grad.masked_fill_(~module._buffers[packing.MASK_BUFFER], 0.0)


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class LayerSparsity:
    """Sparsity of one Linear/conv layer.

    ``total`` and ``nonzero`` count weights (biases excluded); ``density = nonzero / total``.
    ``d_in`` / ``d_out`` are the pattern's degrees (channels for convolutions, per group for
    grouped ones); ``None`` when the layer has no mask. ``kind`` uses :mod:`dse.costmodel.kinds`
    vocabulary: ``"linear"``, ``"conv"`` or ``"depthwise_conv"``.
    """

    kind: str
    total: int
    nonzero: int
    density: float
    d_in: int | None
    d_out: int | None


def _weighted_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, _WEIGHTED_TYPES)}


def layer_stats(model: nn.Module) -> dict[str, LayerSparsity]:
    """Per Linear/conv module (sparsified or not): weight count, nonzeros, density, degrees."""
    out: dict[str, LayerSparsity] = {}
    for name, module in _weighted_modules(model).items():
        weight = module.weight.detach()
        total = weight.numel()
        nonzero = int(torch.count_nonzero(weight))
        if isinstance(module, nn.Linear):
            kind = "linear"
        else:
            kind = "depthwise_conv" if packing.is_depthwise(module) else "conv"
        mask = module._buffers.get(packing.MASK_BUFFER)
        d_in = d_out = None
        if mask is not None:
            d_in, d_out = packing.degrees_of(mask.cpu(), getattr(module, "groups", 1))
        out[name] = LayerSparsity(
            kind=kind,
            total=total,
            nonzero=nonzero,
            density=nonzero / total if total else 1.0,
            d_in=d_in,
            d_out=d_out,
        )
    return out


def realised_density(model: nn.Module) -> float:
    """Nonzero weights / all weights over every Linear/conv layer (1.0 for a model with none)."""
    stats = layer_stats(model).values()
    total = sum(s.total for s in stats)
    return sum(s.nonzero for s in stats) / total if total else 1.0


# --------------------------------------------------------------------------- storage


def _regenerate(groups: int, n_out: int, n_in: int, d_in: int, seed: int) -> list[torch.Tensor]:
    """The channel patterns a seed may stand for (what the seed form stores instead of
    indices): the predefined pattern and, when the degrees are N:M, the N:M one."""
    out = [_pattern_for(groups, n_out, n_in, d_in, _generator(seed))]
    nm = nm_of(d_in / n_in)
    if nm is not None and _nm_fits(n_out, n_in, *nm):
        g = _generator(seed)
        out.append(torch.cat([nm_mask(n_out, n_in, *nm, g) for _ in range(groups)], dim=0))
    return out


def pack_state(model: nn.Module, *, form: str = "indices") -> bytes:
    """:func:`dse.costmodel.packing.pack`, the seed form checked against the regenerated
    pattern: every parameter and persistent buffer, masked layers compressed."""
    return packing.pack(model, form=form, regenerate=_regenerate)


def stored_bytes(model: nn.Module, *, form: str = "indices") -> int:
    """``len(pack_state(model, form=form))`` in bytes, without serialising the tensors.

    The cost model uses ``form="indices"``; ``form="seed"`` is the lower bound.
    """
    return packing.stored_bytes(model, form=form, regenerate=_regenerate)


def unpack_state(data: bytes, model: nn.Module) -> None:
    """Restore a :func:`pack_state` result into ``model`` (same architecture), bit-exactly:
    :func:`dse.costmodel.packing.unpack`, the seed form regenerated by this module."""
    packing.unpack(data, model, regenerate=_regenerate)
