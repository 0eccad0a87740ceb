"""Per-kind kernel latency predictors fitted to measured kernels (what nn-Meter does).

A :class:`KernelPredictor` maps a graph node to its latency in seconds, one model per op
kind, fitted by :func:`fit_predictor` on measured single kernels (``measure.py`` samples
and times them) and layers of whole networks. Two methods, both plain data:

- ``terms``: a roofline with fitted terms, per kind (:func:`model_key`)
  ``t = c0 + c1 * FLOPs + c2 * bytes + c3 * output elements + c4 * input elements``
  (seconds, every coefficient >= 0),
  fitted by non-negative least squares weighted by ``1 / t**2`` (relative error);
- ``trees``: an extra-trees ensemble on :data:`FEATURES` predicting ``log(t)``, stored
  as arrays (children, feature, threshold, value per tree): no pickled code.

A predictor is stored in a JSON sidecar file (:meth:`KernelPredictor.to_json`), named
from the device profile with its sha256 (``[predictor] file = ..., sha256 = ...``).
``call_s`` is the per-call floor of one program (what running an empty program takes):
the edge part of a cut pays it once. ``time_of`` uses the predictor when it has a model
for the node's kind, else returns None (the roofline decides).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only: devices.py imports this module, and must stay light
    from dse.costmodel.graph import Node

#: Version of the sidecar format; a reader refuses others.
FORMAT_VERSION = 1
METHODS: tuple[str, ...] = ("terms", "trees")
#: Features of one node (all derived from the graph node; log1p of sizes):
FEATURES: tuple[str, ...] = (
    "log_flops",  # log1p(FLOPs)
    "log_bytes",  # log1p(weight + input + output bytes)
    "log_in",  # log1p(input elements)
    "log_out",  # log1p(output elements)
    "log_params",  # log1p(parameters)
    "log_channels",  # log1p(output channels: dim 1 of the output)
    "log_spatial",  # log1p(output elements per channel: H x W)
    "log_work",  # log1p(MACs per output element: k*k*c_in/groups of a conv)
    "log_ratio",  # log(input elements / output elements): stride, pooling
)
TERMS: tuple[str, ...] = ("one", "flops", "bytes", "out_elems", "in_elems")


def model_key(node: Node) -> str:
    """The model a node is predicted by: its op kind, with max and average pooling apart
    (``pool.max``, ``pool.avg``: same kind, kernels an order of magnitude apart)."""
    if node.kind == "pool":
        return "pool.max" if "max" in node.op.lower() else "pool.avg"
    return node.kind


def _elements(nbytes: int) -> float:
    return nbytes / 4.0  # float32: what is measured and predicted here


def features(node: Node) -> np.ndarray:
    """The :data:`FEATURES` vector of one node."""
    _, _, moved, n_out, n_in = term_values(node)
    channels = float(node.output_shape[1]) if len(node.output_shape) > 1 else n_out
    spatial = n_out / max(channels, 1.0)
    return np.array(
        [
            math.log1p(node.flops),
            math.log1p(moved),
            math.log1p(n_in),
            math.log1p(n_out),
            math.log1p(node.params),
            math.log1p(channels),
            math.log1p(spatial),
            math.log1p(node.macs / max(n_out, 1.0)),
            math.log(max(n_in, 1.0) / max(n_out, 1.0)),
        ]
    )


def term_values(node: Node) -> np.ndarray:
    """The :data:`TERMS` of one node: 1, FLOPs, bytes moved, output and input elements."""
    n_out = float(np.prod(node.output_shape)) if node.output_shape else _elements(node.output_bytes)
    return np.array(
        [
            1.0,
            float(node.flops),
            float(node.weight_bytes + node.input_bytes + node.output_bytes),
            n_out,
            _elements(node.input_bytes),
        ]
    )


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


@dataclass(frozen=True)
class KindModel:
    """The fitted model of one op kind: coefficients (terms) or trees (log seconds)."""

    kind: str
    method: str
    samples: int  # kernels it was fitted on
    coef: tuple[float, ...] = ()  # terms: seconds per unit of each TERMS entry
    trees: tuple[Tree, ...] = ()

    def predict(self, node: Node) -> float:
        if self.method == "terms":
            return float(np.dot(self.coef, term_values(node)))
        x = features(node)
        return math.exp(sum(t.predict(x) for t in self.trees) / len(self.trees))


@dataclass(frozen=True, eq=False)
class KernelPredictor:
    """Per-kind latency models of one device and runtime (see the module docstring)."""

    method: str
    runtime: str
    call_s: float  # per-call floor of one program, s
    models: Mapping[str, KindModel] = field(hash=False)
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))
        object.__setattr__(self, "_cache", {})
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not (math.isfinite(self.call_s) and self.call_s >= 0):
            raise ValueError(f"call_s must be >= 0, got {self.call_s!r}")

    def time_of(self, node: Node) -> float | None:
        """Predicted seconds of ``node`` as a kernel of its own, or None (no model)."""
        model = self.models.get(model_key(node))
        if model is None:
            return None
        cache: dict[Node, float] = self._cache  # type: ignore[attr-defined]
        if node not in cache:
            cache[node] = max(0.0, model.predict(node))
        return cache[node]

    # ---- plain-data form ------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        kinds: dict[str, Any] = {}
        for kind, m in self.models.items():
            entry: dict[str, Any] = {"method": m.method, "samples": m.samples}
            if m.method == "terms":
                entry["terms"] = list(TERMS)
                entry["coef"] = [float(c) for c in m.coef]
            else:
                entry["features"] = list(FEATURES)
                entry["trees"] = [
                    {
                        "left": t.left.tolist(),
                        "right": t.right.tolist(),
                        "feature": t.feature.tolist(),
                        "threshold": [float(v) for v in t.threshold],
                        "value": [float(v) for v in t.value],
                    }
                    for t in m.trees
                ]
            kinds[kind] = entry
        return {
            "format": "dse-kernel-predictor",
            "version": FORMAT_VERSION,
            "method": self.method,
            "runtime": self.runtime,
            "call_s": self.call_s,
            "meta": dict(self.meta),
            "kinds": kinds,
        }

    def dumps(self) -> bytes:
        """The sidecar file's bytes (stable key order, so its sha256 is reproducible)."""
        return (json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, data: Any) -> KernelPredictor:
        """Parse a sidecar's JSON; raises ValueError saying which field is wrong."""
        if not isinstance(data, dict) or data.get("format") != "dse-kernel-predictor":
            raise ValueError("format: not a dse-kernel-predictor file")
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"version: {data.get('version')!r}, this dse reads {FORMAT_VERSION}")
        models = {}
        for kind, e in dict(data.get("kinds", {})).items():
            method = e.get("method")
            if method == "terms":
                if e.get("terms") != list(TERMS) or len(e.get("coef", ())) != len(TERMS):
                    raise ValueError(f"kinds.{kind}.coef: expected {len(TERMS)} for {TERMS}")
                models[kind] = KindModel(
                    kind, method, int(e.get("samples", 0)), coef=tuple(float(c) for c in e["coef"])
                )
            elif method == "trees":
                if e.get("features") != list(FEATURES):
                    raise ValueError(f"kinds.{kind}.features: expected {list(FEATURES)}")
                trees = tuple(
                    Tree(
                        np.asarray(t["left"], dtype=np.int64),
                        np.asarray(t["right"], dtype=np.int64),
                        np.asarray(t["feature"], dtype=np.int64),
                        np.asarray(t["threshold"], dtype=float),
                        np.asarray(t["value"], dtype=float),
                    )
                    for t in e["trees"]
                )
                if not trees:
                    raise ValueError(f"kinds.{kind}.trees: empty")
                models[kind] = KindModel(kind, method, int(e.get("samples", 0)), trees=trees)
            else:
                raise ValueError(f"kinds.{kind}.method: {method!r} is not one of {METHODS}")
        return cls(
            method=str(data.get("method")),
            runtime=str(data.get("runtime")),
            call_s=float(data.get("call_s", 0.0)),
            models=models,
            meta=data.get("meta", {}),
        )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------

#: A kind needs this many measured kernels to get a model of its own.
MIN_SAMPLES = 4


def fit_predictor(
    nodes: Sequence[Node],
    seconds: Sequence[float],
    *,
    method: str,
    runtime: str,
    call_s: float = 0.0,
    seed: int = 0,
    trees: int = 60,
    meta: Mapping[str, Any] | None = None,
) -> KernelPredictor:
    """Fit one model per op kind with at least :data:`MIN_SAMPLES` kernels (scikit-learn).

    ``seconds``: each node's measured time as a kernel of its own, per-call floor out.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    by_kind: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        if seconds[i] > 0:
            by_kind.setdefault(model_key(n), []).append(i)
    models: dict[str, KindModel] = {}
    for kind, idx in sorted(by_kind.items()):
        if len(idx) < MIN_SAMPLES:
            continue
        y = np.array([seconds[i] for i in idx])
        if method == "terms":
            from sklearn.linear_model import LinearRegression

            x = np.array([term_values(nodes[i]) for i in idx])
            scale = x.max(axis=0)
            scale[scale == 0] = 1.0
            reg = LinearRegression(positive=True, fit_intercept=False)
            reg.fit(x / scale, y, sample_weight=1.0 / y**2)
            models[kind] = KindModel(
                kind, "terms", len(idx), coef=tuple(float(c) for c in reg.coef_ / scale)
            )
        else:
            from sklearn.ensemble import ExtraTreesRegressor

            x = np.array([features(nodes[i]) for i in idx])
            reg = ExtraTreesRegressor(
                n_estimators=trees, min_samples_leaf=2, random_state=seed
            ).fit(x, np.log(y))
            models[kind] = KindModel(
                kind,
                "trees",
                len(idx),
                trees=tuple(
                    Tree(
                        e.tree_.children_left.astype(np.int64),
                        e.tree_.children_right.astype(np.int64),
                        e.tree_.feature.astype(np.int64),
                        e.tree_.threshold.astype(float),
                        e.tree_.value.reshape(-1).astype(float),
                    )
                    for e in reg.estimators_
                ),
            )
    return KernelPredictor(
        method=method, runtime=runtime, call_s=call_s, models=models, meta=dict(meta or {})
    )
