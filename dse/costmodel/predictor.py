"""Per-kind kernel latency predictors fitted to measured kernels and programs (nn-Meter's
idea, fitted to whole programs too).

A :class:`KernelPredictor` maps a graph node to its latency in seconds inside a program,
one model per op kind (:func:`model_key`), and carries ``call_s``, what one program call
costs beyond its layers: the edge part of a cut is predicted as ``call_s`` plus the sum of
its nodes. A kind whose ops run on kernels of different makers is split by the runtime's
own dispatch: a convolution that PyTorch runs on its native im2col + GEMM kernel
(``conv.native``, :func:`conv_path`) is not the convolution it runs on oneDNN (``conv``),
and no size term tells the two apart. Three methods, all plain data:

- ``terms``: a roofline with fitted terms, per kind,
  ``t = c0 + c1 * FLOPs + c2 * bytes + c3 * output elements + c4 * input elements``
  (seconds, every coefficient >= 0), fitted by non-negative least squares weighted by
  ``1 / t**2`` (relative error);
- ``trees``: an extra-trees ensemble on :data:`FEATURES` predicting ``log(t)``, stored
  as arrays (children, feature, threshold, value per tree): no pickled code;
- ``hybrid``: the terms times ``exp`` of trees fitted to their log residuals, so the
  terms carry the scale (and extrapolate past the sampled sizes) and the trees the
  efficiency a kind has at each shape (how well a convolution's channels fill the
  vector units, say).

:func:`fit_predictor` fits them to single kernels (each timed as a program of its own, the
empty program's time taken out) and, where given, to whole programs
(:class:`ProgramTime`: the edge part of every cut of a network, timed as one program).
A layer alone in a program costs more than the same layer among others (the dispatch
path is cold); with programs to fit, every kind gets an ``alone`` term of its own that
only single kernels pay, and ``call_s`` is fitted as the programs' intercept, so the sums
are fitted to what programs take rather than to what their layers take alone.

A predictor is stored in a JSON sidecar file (:meth:`KernelPredictor.to_json`), named
from the device profile with its sha256 (``[predictor] file = ..., sha256 = ...``). Each
kind's entry names its terms and features, so a reader computes what the file says; files
of :data:`READABLE_VERSIONS` load, other versions and unknown names are refused with the
field. ``time_of`` uses the predictor when it has a model for the node's kind, else
returns None (the roofline decides).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only: devices.py imports this module, and must stay light
    from dse.costmodel.graph import Node

#: Version of the sidecar format this dse writes, and the versions it reads.
#: Version 3 split convolutions by their kernel (``conv.native``) and names the threads
#: the predictor was fitted at (the split depends on them).
FORMAT_VERSION = 3
READABLE_VERSIONS: tuple[int, ...] = (1, 2, 3)
METHODS: tuple[str, ...] = ("terms", "trees", "hybrid")


def _elements(nbytes: int) -> float:
    return nbytes / 4.0  # float32: what is measured and predicted here


def _n_out(node: Node) -> float:
    return float(np.prod(node.output_shape)) if node.output_shape else _elements(node.output_bytes)


def _channels(node: Node) -> float:
    return float(node.output_shape[1]) if len(node.output_shape) > 1 else _n_out(node)


def _moved(node: Node) -> float:
    return float(node.weight_bytes + node.input_bytes + node.output_bytes)


def _c_in(node: Node) -> float:
    """Input channels (a linear's input features; all input elements when unknown)."""
    shape = node.input_shape
    return float(shape[1]) if len(shape) > 1 else _elements(node.input_bytes)


def _kernel_area(node: Node) -> float:
    """Multiply-accumulates per output element and input channel: a convolution's
    ``k * k`` (a depthwise one's per channel), 1 for a linear, 0 without MACs."""
    per_out = node.macs / max(_n_out(node), 1.0)
    return per_out if node.kind == "depthwise_conv" else per_out / max(_c_in(node), 1.0)


def _padding(channels: float, lanes: int) -> float:
    """Lanes a kernel computes per lane of work when it runs ``channels`` in vectors of
    ``lanes``: 1 for a multiple of ``lanes``, more where the last vector is part-filled
    (``lanes / channels`` below one vector)."""
    c = max(int(channels), 1)
    return math.ceil(c / lanes) * lanes / c if c >= lanes else lanes / c


def _padded_flops(node: Node, lanes: int) -> float:
    """FLOPs with the channel counts rounded up to whole vectors of ``lanes`` (what a
    blocked kernel computes: a convolution's input and output channels, a depthwise
    one's channels); other kinds' FLOPs as they are."""
    if node.kind == "depthwise_conv":
        return node.flops * _padding(_channels(node), lanes)
    if node.kind in ("conv", "linear"):
        return node.flops * _padding(_c_in(node), lanes) * _padding(_channels(node), lanes)
    return float(node.flops)


#: The terms of the ``terms`` and ``hybrid`` models, by name (each in its own unit).
TERM_FUNCS: Mapping[str, Callable[[Node], float]] = MappingProxyType(
    {
        "one": lambda n: 1.0,  # per call
        "flops": lambda n: float(n.flops),  # FLOPs
        "bytes": _moved,  # weight + input + output bytes
        "out_elems": _n_out,  # output elements
        "in_elems": lambda n: _elements(n.input_bytes),  # input elements
        "flops_pad16": lambda n: _padded_flops(n, 16),  # FLOPs on whole 16-lane vectors
        "weights": lambda n: float(n.params),  # weights (a kernel reorders them per call)
    }
)
#: The terms the first sidecar format knew.
TERMS_V1: tuple[str, ...] = ("one", "flops", "bytes", "out_elems", "in_elems")
TERMS: tuple[str, ...] = tuple(TERM_FUNCS)

#: The features of the ``trees`` and ``hybrid`` models, by name (log1p of sizes).
FEATURE_FUNCS: Mapping[str, Callable[[Node], float]] = MappingProxyType(
    {
        "log_flops": lambda n: math.log1p(n.flops),
        "log_bytes": lambda n: math.log1p(_moved(n)),
        "log_in": lambda n: math.log1p(_elements(n.input_bytes)),
        "log_out": lambda n: math.log1p(_n_out(n)),
        "log_params": lambda n: math.log1p(n.params),
        "log_channels": lambda n: math.log1p(_channels(n)),  # output channels: dim 1
        "log_spatial": lambda n: math.log1p(_n_out(n) / max(_channels(n), 1.0)),  # H x W out
        # MACs per output element: k*k*c_in/groups of a conv, the inputs of a linear
        "log_work": lambda n: math.log1p(n.macs / max(_n_out(n), 1.0)),
        # input elements per output element: stride, pooling
        "log_ratio": lambda n: math.log(max(_elements(n.input_bytes), 1.0) / max(_n_out(n), 1.0)),
        "log_cin": lambda n: math.log1p(_c_in(n)),  # input channels
        "log_kernel": lambda n: math.log1p(_kernel_area(n)),  # k * k
        # vector lanes left empty by the channel counts (8 and 16 float32 lanes)
        "pad8_in": lambda n: _padding(_c_in(n), 8),
        "pad8_out": lambda n: _padding(_channels(n), 8),
        "pad16_in": lambda n: _padding(_c_in(n), 16),
        "pad16_out": lambda n: _padding(_channels(n), 16),
    }
)
#: The features the first sidecar format knew (its trees name them).
FEATURES_V1: tuple[str, ...] = tuple(FEATURE_FUNCS)[:9]
FEATURES: tuple[str, ...] = tuple(FEATURE_FUNCS)

#: Ops that vanish from an exported program (an identity, dropout at inference): no
#: model, so the roofline prices them (a free kind: 0 s).
VANISHING_OPS = frozenset({"Identity", "Dropout", "Dropout1d", "Dropout2d", "dropout"})


#: PyTorch's CPU convolution dispatch (``ConvParams::use_mkldnn`` in ATen's
#: ``native/Convolution.cpp``): a float32 convolution of one image with a kernel of at
#: most 3x3 and an input of at most this many elements runs on PyTorch's own im2col +
#: GEMM kernel, because "for some case, native is faster"; larger ones run on oneDNN.
NATIVE_CONV_MAX_INPUT = 20480


def conv_path(node: Node, threads: int = 1) -> str:
    """The kernel PyTorch's CPU dispatch runs a convolution ``node`` on, with ``threads``
    intra-op threads: ``"native"`` (im2col + GEMM) or ``"onednn"``.

    oneDNN takes every convolution of a batch of more than one, with a kernel larger
    than 3x3, or with an input of more than :data:`NATIVE_CONV_MAX_INPUT` elements,
    except a 1x1 stride-1 one on a single thread and a batch under 16 (native is faster
    there); the rest run native. The two differ in efficiency by a factor of up to 1.5
    at one size (a 3x3 convolution of 20 channels: 42 GFLOP/s at 32x32 natively, 30 at
    36x36 on oneDNN, measured on an EPYC core), which no term of sizes can follow. The
    kernel size is read as MACs per output element and input channel, so a grouped
    (not depthwise) convolution reads as a smaller kernel; such layers are rare on the
    edge, and the fit's samples have none."""
    shape, out = node.input_shape, node.output_shape
    if node.kind != "conv" or len(shape) != 4 or len(out) != 4:
        return "onednn"
    batch, c_in, h, w = shape
    area = node.macs / max(math.prod(out) * c_in, 1)  # k * k
    strided = out[2] < h or out[3] < w
    if not strided and area <= 1 and batch < 16 and threads <= 1:
        return "native"
    onednn = batch > 1 or area > 9 or batch * c_in * h * w > NATIVE_CONV_MAX_INPUT
    return "onednn" if onednn else "native"


def model_key(node: Node, threads: int = 1) -> str | None:
    """The model a node is predicted by: its op kind, with max and average pooling apart
    (``pool.max``, ``pool.avg``: same kind, kernels an order of magnitude apart) and
    convolutions on PyTorch's native kernel apart from those on oneDNN (``conv.native``,
    :func:`conv_path` with ``threads``); None for an op that vanishes from a program
    (:data:`VANISHING_OPS`)."""
    if node.op in VANISHING_OPS:
        return None
    if node.kind == "pool":
        return "pool.max" if "max" in node.op.lower() else "pool.avg"
    if node.kind == "conv" and conv_path(node, threads) == "native":
        return "conv.native"
    return node.kind


def base_key(key: str) -> str:
    """The kind a split key falls back to where it has no model of its own
    (``conv.native`` -> ``conv``; a predictor of an older format has only ``conv``)."""
    return "conv" if key == "conv.native" else key


def term_values(node: Node, names: Sequence[str] = TERMS) -> np.ndarray:
    """The values of the terms ``names`` (default :data:`TERMS`) of one node."""
    return np.array([TERM_FUNCS[t](node) for t in names])


def features(node: Node, names: Sequence[str] = FEATURES) -> np.ndarray:
    """The values of the features ``names`` (default :data:`FEATURES`) of one node."""
    return np.array([FEATURE_FUNCS[f](node) for f in names])


@dataclass(frozen=True)
class Tree:
    """One regression tree as arrays (sklearn's ``tree_`` layout; leaf: left == -1)."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray

    def predict(self, x: np.ndarray) -> float:
        i = 0
        left, right, feat, thr = self.left, self.right, self.feature, self.threshold
        while left[i] != -1:
            i = left[i] if x[feat[i]] <= thr[i] else right[i]
        return float(self.value[i])

    def plain(self) -> dict[str, list[Any]]:
        return {
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "feature": self.feature.tolist(),
            "threshold": [float(v) for v in self.threshold],
            "value": [float(v) for v in self.value],
        }

    @classmethod
    def of(cls, data: Mapping[str, Any], n_features: int) -> Tree:
        """A tree from its plain form; ValueError when its arrays do not make a tree."""
        t = cls(
            np.asarray(data["left"], dtype=np.int64),
            np.asarray(data["right"], dtype=np.int64),
            np.asarray(data["feature"], dtype=np.int64),
            np.asarray(data["threshold"], dtype=float),
            np.asarray(data["value"], dtype=float),
        )
        n = len(t.left)
        if n == 0 or not all(len(a) == n for a in (t.right, t.feature, t.threshold, t.value)):
            raise ValueError("arrays of unequal length")
        inner = t.left != -1
        kids = np.concatenate([t.left[inner], t.right[inner]])
        if kids.size and (kids.min() <= 0 or kids.max() >= n):
            raise ValueError("a child index outside the tree")
        if inner.any() and (t.feature[inner].min() < 0 or t.feature[inner].max() >= n_features):
            raise ValueError("a feature index outside the feature list")
        return t

    @classmethod
    def of_sklearn(cls, estimator: Any) -> Tree:
        t = estimator.tree_
        return cls(
            t.children_left.astype(np.int64),
            t.children_right.astype(np.int64),
            t.feature.astype(np.int64),
            t.threshold.astype(float),
            t.value.reshape(-1).astype(float),
        )


@dataclass(frozen=True)
class KindModel:
    """The fitted model of one op kind: coefficients (terms), trees (log seconds), or both
    (hybrid: the terms times ``exp`` of the trees' log correction)."""

    kind: str
    method: str
    samples: int  # kernels it was fitted on
    coef: tuple[float, ...] = ()  # terms, hybrid: seconds per unit of each term
    trees: tuple[Tree, ...] = ()
    terms: tuple[str, ...] = TERMS
    features: tuple[str, ...] = FEATURES

    def base(self, node: Node) -> float:
        """The terms' part, seconds."""
        return float(np.dot(self.coef, term_values(node, self.terms)))

    def log_correction(self, node: Node) -> float:
        """The trees' part: log seconds (trees) or a log factor (hybrid)."""
        x = features(node, self.features)
        return sum(t.predict(x) for t in self.trees) / len(self.trees)

    def predict(self, node: Node) -> float:
        if self.method == "terms":
            return self.base(node)
        if self.method == "trees":
            return math.exp(self.log_correction(node))
        return self.base(node) * math.exp(self.log_correction(node))

    def plain(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"method": self.method, "samples": self.samples}
        if self.method in ("terms", "hybrid"):
            entry["terms"] = list(self.terms)
            entry["coef"] = [float(c) for c in self.coef]
        if self.method in ("trees", "hybrid"):
            entry["features"] = list(self.features)
            entry["trees"] = [t.plain() for t in self.trees]
        return entry

    @classmethod
    def of(cls, kind: str, e: Any) -> KindModel:
        """A kind's model from its plain form; ValueError naming the wrong field."""
        where = f"kinds.{kind}"
        if not isinstance(e, Mapping):
            raise ValueError(f"{where}: not a table")
        method = e.get("method")
        if method not in METHODS:
            raise ValueError(f"{where}.method: {method!r} is not one of {METHODS}")
        coef: tuple[float, ...] = ()
        terms: tuple[str, ...] = TERMS
        if method in ("terms", "hybrid"):
            terms = _names(e.get("terms"), TERM_FUNCS, f"{where}.terms")
            raw = e.get("coef")
            if not isinstance(raw, list) or len(raw) != len(terms):
                raise ValueError(f"{where}.coef: expected {len(terms)} numbers for {terms}")
            coef = tuple(_finite(c, f"{where}.coef") for c in raw)
        trees: tuple[Tree, ...] = ()
        names: tuple[str, ...] = FEATURES
        if method in ("trees", "hybrid"):
            names = _names(e.get("features"), FEATURE_FUNCS, f"{where}.features")
            raw_trees = e.get("trees")
            if not isinstance(raw_trees, list) or not raw_trees:
                raise ValueError(f"{where}.trees: empty")
            try:
                trees = tuple(Tree.of(t, len(names)) for t in raw_trees)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{where}.trees: {exc}") from None
        samples = e.get("samples", 0)
        if not isinstance(samples, int) or samples < 0:
            raise ValueError(f"{where}.samples: {samples!r} is not a count")
        return cls(kind, method, samples, coef, trees, terms, names)


def _names(raw: Any, known: Mapping[str, Any], where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(n, str) for n in raw):
        raise ValueError(f"{where}: expected a list of names from {tuple(known)}")
    unknown = [n for n in raw if n not in known]
    if unknown:
        raise ValueError(f"{where}: unknown {unknown[0]!r}; this dse knows {tuple(known)}")
    return tuple(raw)


def _finite(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"{where}: {v!r} is not a finite number")
    return float(v)


@dataclass(frozen=True, eq=False)
class KernelPredictor:
    """Per-kind latency models of one device and runtime (see the module docstring)."""

    method: str
    runtime: str
    call_s: float  # per-call floor of one program, s
    models: Mapping[str, KindModel] = field(hash=False)
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)
    threads: int = 1  # intra-op threads it was fitted at (the dispatch depends on them)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))
        object.__setattr__(self, "_cache", {})
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not (math.isfinite(self.call_s) and self.call_s >= 0):
            raise ValueError(f"call_s must be >= 0, got {self.call_s!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads must be a count >= 1, got {self.threads!r}")

    def model_of(self, node: Node) -> KindModel | None:
        """The model that prices ``node``: its key's (:func:`model_key`), else its base
        kind's (:func:`base_key`), else None."""
        key = model_key(node, self.threads)
        if key is None:
            return None
        return self.models.get(key) or self.models.get(base_key(key))

    def time_of(self, node: Node) -> float | None:
        """Predicted seconds of ``node`` inside a program, or None (no model)."""
        model = self.model_of(node)
        if model is None:
            return None
        cache: dict[Node, float] = self._cache  # type: ignore[attr-defined]
        if node not in cache:
            cache[node] = max(0.0, model.predict(node))
        return cache[node]

    def program_s(self, nodes: Sequence[Node]) -> float:
        """Predicted seconds of one program running ``nodes`` (nodes with no model: 0)."""
        return self.call_s + sum(self.time_of(n) or 0.0 for n in nodes)

    # ---- plain-data form ------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "dse-kernel-predictor",
            "version": FORMAT_VERSION,
            "method": self.method,
            "runtime": self.runtime,
            "call_s": self.call_s,
            "threads": self.threads,
            "meta": dict(self.meta),
            "kinds": {kind: m.plain() for kind, m in self.models.items()},
        }

    def dumps(self) -> bytes:
        """The sidecar file's bytes (stable key order, so its sha256 is reproducible)."""
        return (json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, data: Any) -> KernelPredictor:
        """Parse a sidecar's JSON (any of :data:`READABLE_VERSIONS`); raises ValueError
        saying which field is wrong."""
        if not isinstance(data, dict) or data.get("format") != "dse-kernel-predictor":
            raise ValueError("format: not a dse-kernel-predictor file")
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            raise ValueError(
                f"version: {version!r}, this dse reads {', '.join(map(str, READABLE_VERSIONS))}"
                " (write it again with dse calibrate)"
            )
        kinds = data.get("kinds", {})
        if not isinstance(kinds, dict):
            raise ValueError("kinds: not a table")
        models = {str(kind): KindModel.of(str(kind), e) for kind, e in kinds.items()}
        method = data.get("method")
        if method not in METHODS:
            raise ValueError(f"method: {method!r} is not one of {METHODS}")
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise ValueError("meta: not a table")
        threads = data.get("threads", 1)  # formats 1 and 2 have one conv model: any count
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads: {threads!r} is not a count >= 1")
        return cls(
            method=str(method),
            runtime=str(data.get("runtime")),
            call_s=_finite(data.get("call_s", 0.0), "call_s"),
            models=models,
            meta=meta,
            threads=threads,
        )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------

#: A kind needs this many measured kernels to get a model of its own.
MIN_SAMPLES = 4
#: Weight of a program's row beside a single kernel's (both relative errors): programs
#: are what a cut runs, so they weigh most.
PROGRAM_WEIGHT = 10.0
#: Rounds of the hybrid fit: terms, trees on their residuals, terms again under the trees.
HYBRID_ROUNDS = 2


@dataclass(frozen=True)
class ProgramTime:
    """One program's measured seconds (the whole call) and the nodes it runs."""

    nodes: tuple[Node, ...]
    seconds: float


def _extra_trees(x: np.ndarray, y: np.ndarray, *, trees: int, seed: int, leaf: int) -> Any:
    from sklearn.ensemble import ExtraTreesRegressor

    return ExtraTreesRegressor(n_estimators=trees, min_samples_leaf=leaf, random_state=seed).fit(
        x, y
    )


class _Design:
    """The least-squares problem of the terms: one block of coefficients per kind, where
    programs are fitted an ``alone`` block per kind (what a kernel alone in a program pays
    beyond the same kernel among others: a fixed part and one per input element, its
    input no longer in the cache) and a ``call`` column (programs only)."""

    ALONE: tuple[str, ...] = ("one", "in_elems")

    def __init__(
        self,
        kinds: Sequence[str],
        *,
        programs: bool,
        terms: tuple[str, ...],
        key: Callable[[Node], str | None],
    ) -> None:
        self.kinds = list(kinds)
        self.key = key
        self.terms = terms
        self.at = {k: i for i, k in enumerate(self.kinds)}
        self.programs = programs
        n = len(self.kinds) * len(terms)
        self.alone0 = n
        self.call = n + len(self.kinds) * len(self.ALONE) if programs else -1
        self.width = self.call + 1 if programs else n

    def node(self, node: Node, factor: float, *, alone: bool) -> np.ndarray:
        x = np.zeros(self.width)
        key = self.key(node)
        if key in self.at:
            i = self.at[key] * len(self.terms)
            x[i : i + len(self.terms)] = term_values(node, self.terms) * factor
            if alone and self.programs:
                j = self.alone0 + self.at[key] * len(self.ALONE)
                x[j : j + len(self.ALONE)] = term_values(node, self.ALONE)
        return x

    def solve(self, rows: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        from sklearn.linear_model import LinearRegression

        scale = rows.max(axis=0)
        scale[scale == 0] = 1.0
        reg = LinearRegression(positive=True, fit_intercept=False)
        reg.fit(rows / scale, y, sample_weight=w**2)
        return reg.coef_ / scale

    def coef(self, theta: np.ndarray, key: str) -> np.ndarray:
        i = self.at[key] * len(self.terms)
        return theta[i : i + len(self.terms)]

    def alone(self, theta: np.ndarray, node: Node) -> float:
        """What ``node`` alone in a program pays beyond the same node among others, s."""
        key = self.key(node)
        if not self.programs or key not in self.at:
            return 0.0
        j = self.alone0 + self.at[key] * len(self.ALONE)
        return float(np.dot(theta[j : j + len(self.ALONE)], term_values(node, self.ALONE)))


def _fit_keys(
    nodes: Sequence[Node], seconds: Sequence[float], threads: int
) -> tuple[Callable[[Node], str | None], dict[str, list[int]]]:
    """The key each node is fitted under (:func:`model_key` at ``threads``, a split key
    with fewer than :data:`MIN_SAMPLES` timed kernels falling back to its
    :func:`base_key`), and the indices of the timed nodes under each key."""
    raw = [model_key(n, threads) for n in nodes]
    counts: dict[str, int] = {}
    for k, t in zip(raw, seconds, strict=True):
        if k is not None and t > 0:
            counts[k] = counts.get(k, 0) + 1

    def fitted(k: str | None) -> str | None:
        return k if k is None or counts.get(k, 0) >= MIN_SAMPLES else base_key(k)

    by_kind: dict[str, list[int]] = {}
    for i, (k, t) in enumerate(zip(raw, seconds, strict=True)):
        if k is not None and t > 0:
            by_kind.setdefault(str(fitted(k)), []).append(i)
    return (lambda n: fitted(model_key(n, threads))), by_kind


def fit_predictor(
    nodes: Sequence[Node],
    seconds: Sequence[float],
    *,
    method: str,
    runtime: str,
    call_s: float = 0.0,
    seed: int = 0,
    trees: int = 40,
    meta: Mapping[str, Any] | None = None,
    programs: Sequence[ProgramTime] = (),
    terms: Sequence[str] = TERMS,
    threads: int = 1,
) -> KernelPredictor:
    """Fit one model per op kind with at least :data:`MIN_SAMPLES` kernels (scikit-learn).

    ``seconds``: each node's measured time as a kernel of its own, the per-call floor
    ``call_s`` out. ``programs``: whole programs' measured seconds; where given, the
    terms (``terms``, ``hybrid``) are fitted to them too and ``call_s`` becomes their
    fitted intercept (module docstring); ``trees`` fits single kernels only. ``threads``:
    the intra-op threads everything was timed at (the dispatch's split,
    :func:`model_key`); a split key with too few kernels is fitted with its base kind.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")

    key_of, by_kind = _fit_keys(nodes, seconds, threads)
    kinds = sorted(k for k, idx in by_kind.items() if len(idx) >= MIN_SAMPLES)
    if method == "trees" or not kinds:
        models = {
            k: _trees_model(nodes, seconds, by_kind[k], k, trees=trees, seed=seed) for k in kinds
        }
        return KernelPredictor(method, runtime, call_s, models, dict(meta or {}), threads)
    single = [i for k in kinds for i in by_kind[k]]
    progs = [p for p in programs if p.seconds > 0]
    design = _Design(kinds, programs=bool(progs), terms=tuple(terms), key=key_of)
    factor: dict[int, float] = {}  # id(node) -> the trees' factor (hybrid)
    tree_models: dict[str, tuple[Tree, ...]] = {}
    theta = np.zeros(design.width)
    for round_ in range(HYBRID_ROUNDS if method == "hybrid" else 1):
        rows = [design.node(nodes[i], factor.get(id(nodes[i]), 1.0), alone=True) for i in single]
        y = [seconds[i] for i in single]
        w = [1.0 / seconds[i] for i in single]
        for p in progs:
            x = sum(
                (design.node(n, factor.get(id(n), 1.0), alone=False) for n in p.nodes),
                start=np.zeros(design.width),
            )
            x[design.call] = 1.0
            rows.append(x)
            y.append(p.seconds)
            w.append(PROGRAM_WEIGHT / p.seconds)
        theta = design.solve(np.array(rows), np.array(y), np.array(w))
        if method != "hybrid" or round_ == HYBRID_ROUNDS - 1:
            break
        tree_models = {}
        for k in kinds:
            coef = design.coef(theta, k)
            xs, rs = [], []
            for i in by_kind[k]:
                base = float(np.dot(coef, term_values(nodes[i], design.terms)))
                own = seconds[i] - design.alone(theta, nodes[i])  # what a program pays too
                if base > 0 and own > 0:
                    xs.append(features(nodes[i]))
                    rs.append(math.log(own / base))
            if len(xs) < MIN_SAMPLES:
                continue
            reg = _extra_trees(np.array(xs), np.array(rs), trees=trees, seed=seed, leaf=3)
            tree_models[k] = tuple(Tree.of_sklearn(e) for e in reg.estimators_)
        every = {id(n): n for n in [nodes[i] for i in single] + [n for p in progs for n in p.nodes]}
        factor = {}
        for n in every.values():  # each node once: a program repeats its prefix's nodes
            key = key_of(n)
            if key in tree_models:
                x = features(n)
                factor[id(n)] = math.exp(
                    sum(t.predict(x) for t in tree_models[key]) / len(tree_models[key])
                )
    models = {}
    for k in kinds:
        coef = tuple(float(c) for c in design.coef(theta, k))
        if method == "hybrid" and k in tree_models:
            models[k] = KindModel(k, "hybrid", len(by_kind[k]), coef, tree_models[k], design.terms)
        else:
            models[k] = KindModel(k, "terms", len(by_kind[k]), coef, terms=design.terms)
    call = float(theta[design.call]) if progs else call_s
    return KernelPredictor(method, runtime, call, models, dict(meta or {}), threads)


def _trees_model(
    nodes: Sequence[Node],
    seconds: Sequence[float],
    idx: Sequence[int],
    kind: str,
    *,
    trees: int,
    seed: int,
) -> KindModel:
    """A kind's ``trees`` model: extra trees on log seconds of its single kernels."""
    x = np.array([features(nodes[i]) for i in idx])
    y = np.log([seconds[i] for i in idx])
    reg = _extra_trees(x, y, trees=trees, seed=seed, leaf=2)
    return KindModel(
        kind, "trees", len(idx), trees=tuple(Tree.of_sklearn(e) for e in reg.estimators_)
    )
