"""``dse export``: one trial of a study written as an edge program and a server program.

The network is the one the study scored (from the training cache; trained, and said so,
only if the cache lost it), traced as the layer graph traces it, and cut where the
trial cuts it: each side's stages (:func:`~dse.deploy.programs.side_programs`, one per
used exit and one to the cut or the end) become ``torch.export`` programs for batch 1,
``edge.pt2``, ``edge.1.pt2``, ... and ``server.pt2``, ``server.1.pt2``, ..., listed in
run order in the manifest's ``programs``.
The codec's numeric part (int8/int4 affine quantisation, fp16/bf16 casts) is in the
programs, the very :meth:`dse.nets.Codec.quantize` and :func:`dse.nets.dequantize` the
study used (so ``"encoder": "program"``); the bytes are packed by the bundle's runtime.

Sparse layers (predefined or N:M masks) are stored once, compressed
(:func:`dse.nets.sparsity.pack_state`, the seed form where the pattern regenerates from
its seed), in ``weights/sparse.dsew``; in the programs each such weight is a placeholder
of the right shape over one stored value, filled at load.

The programs take normalised inputs: the manifest's ``normalisation`` says how a device
turns its [0, 1] pixels into them, ``(pixel - mean) / std`` per channel, the data set's
own (the user's stated ``mean`` and ``std``, or the training split's statistics), which
:meth:`dse.deploy.bundle.Bundle.normalise` applies and ``dse run-split`` runs through.

``reference.npz`` holds, over the test split, what the study's own scoring says: each
task's path (``Scorer.decisions``), the predicted class under that scoring (the server's
outputs on decoded tensors for a lossy codec), the payload bytes the study counted, and
the whole network's final logits.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

import dse
import dse.deploy.bundle as B
from dse.deploy.programs import run_all, side_programs, traced
from dse.errors import InputError, write_refused
from dse.nets import Cache, Codec, codec_outputs, sparsity
from dse.search import Candidate, Explorer, front_frame, load_study, plain, record_of

#: Metrics a trial's record must match when its network is scored again (the network in
#: the cache is the one the study scored).
RESCORED = ("accuracy", "test_accuracy", "latency_mean", "bandwidth")


@dataclass(frozen=True)
class Exported:
    """What :func:`export_bundle` wrote."""

    folder: Path
    manifest: dict[str, Any]
    notes: tuple[str, ...]


def choose_trial(
    name: str, *, trial: int | None, best: str | None, storage: str | None = None
) -> tuple[Any, Any, dict[str, Any], list[str]]:
    """(study, spec, the trial's record, notes) for ``--trial N`` or ``--best OBJ``."""
    study, spec = load_study(name, storage=storage)
    notes: list[str] = []
    if (trial is None) == (best is None):
        raise InputError(
            "command line", "--trial/--best", "give exactly one of them", "e.g. --best latency_mean"
        )
    if best is not None:
        if best not in spec.objectives:
            raise InputError(
                name,
                "--best",
                f"{best!r} is not an objective of the study",
                f"use one of {', '.join(spec.objectives)}",
            )
        front = front_frame(study, spec)
        if front.empty:
            raise InputError(
                name,
                "--best",
                "the study has no feasible complete trial",
                "run the study (longer), or relax its constraints",
            )
        ascending = spec.objectives[best] == "minimize"
        row = front.sort_values([best, "trial"], ascending=[ascending, True]).iloc[0]
        trial = int(row["trial"])
    assert trial is not None
    found = [t for t in study.get_trials(deepcopy=False) if t.number == trial]
    if not found:
        last = len(study.trials) - 1
        raise InputError(
            name,
            "--trial",
            f"no trial {trial}",
            f"the study has trials 0..{last}" if last >= 0 else "run the study",
        )
    t = found[0]
    if t.state.name != "COMPLETE":
        reason = t.user_attrs.get("fail_reason")
        raise InputError(
            name,
            "--trial",
            f"trial {trial} is {t.state.name}" + (f" ({reason})" if reason else ""),
            "export a complete trial (dse front NAME lists them)",
        )
    record = record_of(t)
    if record is None:
        raise InputError(
            name, "--trial", f"trial {trial} has no dse record", "export a trial dse scored"
        )
    violated = [
        str(c) for c, v in zip(spec.constraints, record["constraints"], strict=False) if v > 0
    ]
    if violated:
        notes.append(
            f"trial {trial} fails the study's constraints ({'; '.join(violated)}): "
            "exported as asked"
        )
    return study, spec, {"number": trial, **record}, notes


def candidate_of(record: dict[str, Any]) -> Candidate:
    return Candidate.from_row({f"knob_{k}": v for k, v in record["knobs"].items()})


def export_bundle(
    name: str,
    out: str | Path,
    *,
    trial: int | None = None,
    best: str | None = None,
    force: bool = False,
    storage: str | None = None,
    cache: Cache | None = None,
    progress: bool = False,
) -> Exported:
    """Export one trial of study ``name`` as a bundle in ``out`` (see the module
    docstring); :class:`InputError` for an unknown study, objective or trial, or an
    ``out`` that holds files (without ``force``)."""
    out = _checked_out(Path(out), force)
    study, spec, record, notes = choose_trial(name, trial=trial, best=best, storage=storage)
    cand = candidate_of(record)
    explorer = Explorer(spec, cache=cache or Cache(), progress=progress)
    scorer = explorer.scorer(cand.method, cand.density, cand.split)
    if explorer.trained_now:
        notes.append(
            "the network was not in the training cache: trained it again "
            "(same key and seed) for the export"
        )
    notes += _rescored_differs(scorer, cand, record)
    trained, graph = scorer.trained, scorer.graph
    k = cand.split
    n = len(graph.backbone)
    tasks = trained.tasks
    classes = trained.classes
    used = sorted(cand.exits, key=lambda j: (graph.exits[j].position, j))
    edge_only = k == n
    codec = Codec.parse(cand.codec) if cand.codec is not None and not edge_only else None
    thresholds = cand.thresholds(len(tasks))

    net = trained.network()
    gm = traced(net)
    sparse = _sparse_layers(gm)
    sparse_blob, form = _sparse_file(sparse) if sparse else (None, None)
    _drop_masks(gm)
    x_test = explorer.data.test.x
    example = x_test[:1].to(torch.float32)
    rule = dict(
        thresholds=thresholds, criterion=cand.criterion, policy=cand.policy, classes=classes
    )
    files: dict[str, bytes] = {}
    programs: dict[str, list[str]] = {"edge": [], "server": []}
    opened = torch.ones(len(tasks), dtype=torch.bool)
    first: tuple[torch.Tensor, ...] = (example,)
    for side in ("edge",) if edge_only else ("edge", "server"):
        stages = side_programs(gm, graph, k, used, side=side, codec=codec, **rule)
        programs[side], last = _export_side(stages, side, first, opened, spec, sparse, files)
        first = (opened, *last[1 + len(tasks) :])  # the server takes the edge's payload
    if sparse_blob is not None:
        files[B.SPARSE] = sparse_blob
    reference, check = _reference(scorer, cand, used, codec, x_test)
    notes += check
    buf = io.BytesIO()
    np.savez(buf, **reference)
    files[B.REFERENCE] = buf.getvalue()

    crossing = [] if edge_only else _crossing(graph, k, explorer.data.input_shape)
    exits = _exit_entries(graph, used, k, explorer.exit_names)
    predicted = _predicted(record["metrics"], tasks, reference)
    manifest: dict[str, Any] = {
        "dse_version": dse.__version__,
        "format": B.FORMAT,
        "torch_version": torch.__version__,
        "study": name,
        "spec": spec.text,
        "trial": record["number"],
        "candidate": record["knobs"],
        "model": spec.model,
        "input_shape": [1, *explorer.data.input_shape],
        "normalisation": _normalisation(explorer.data),
        "cut": k,
        "cut_after": graph.cuts[k].after,
        "edge_only": edge_only,
        "server_only": k == 0,
        "crossing": crossing,
        "codec": None if codec is None else codec.name,
        "encoder": "program",
        "programs": programs,
        "exits": exits,
        "thresholds": list(thresholds),
        "criterion": cand.criterion,
        "policy": cand.policy,
        "tasks": list(tasks),
        "classes": list(classes),
        "predicted": predicted,
        "sparse": None if sparse_blob is None else _sparse_entry(form, sparse),
        "notes": notes,
        "files": {},
    }
    _write(out, files, manifest, force)
    return Exported(out, manifest, tuple(notes))


def _checked_out(out: Path, force: bool) -> Path:
    """``out``, refused when it holds files and ``force`` is not given."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise InputError(
            out, "--out", "exists and is not empty", "give --force to replace it, or another folder"
        )
    return out


def _normalisation(data: Any) -> dict[str, Any]:
    """What the bundle's input is: pixels in [0, 1], and the data set's mean and std."""
    return {
        "pixels": "float32 in [0, 1], N x C x H x W",
        "mean": list(data.mean),
        "std": list(data.std),
    }


def _sparse_entry(form: Any, sparse: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's entry for the packed sparse weights."""
    return {
        "file": B.SPARSE,
        "form": form,
        "layers": [_layer_entry(name, m) for name, m in sparse.items()],
    }


def _rescored_differs(scorer: Any, cand: Any, record: Mapping[str, Any]) -> list[str]:
    """A note when scoring the network again differs from the study's record (the network
    in the cache is not the one the study scored); none when it agrees."""
    rescored = scorer.score(cand).as_dict()
    off = [
        k
        for k in RESCORED
        if not math.isclose(
            float(rescored[k]), float(record["metrics"][k]), rel_tol=1e-9, abs_tol=1e-12
        )
    ]
    if not off:
        return []
    return [
        f"scoring the network again differs from the study's record in "
        f"{', '.join(off)}: the network is not the one the study scored"
    ]


def _export_side(
    stages: Sequence[Any],
    side: str,
    first: tuple[torch.Tensor, ...],
    opened: torch.Tensor,
    spec: Any,
    sparse: Mapping[str, Any],
    files: dict[str, bytes],
) -> tuple[list[str], tuple[torch.Tensor, ...]]:
    """Export one side's stage programs into ``files``, each traced on the inputs the
    stages before it give (every stage run in turn from ``first``): the programs' file
    names and the last stage's outputs."""
    with torch.no_grad():
        inputs, last = run_all(stages, first, opened)
    names = B.program_names(side, len(stages))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for file, module, args in zip(names, stages, inputs, strict=True):
            files[file] = _saved(_export(module, args, side, spec), sparse)
    return names, last


def _crossing(graph: Any, k: int, input_shape: Sequence[int]) -> list[dict[str, Any]]:
    """The tensors that cross the cut ``k``: name, shape of one sample, dtype."""
    return [
        {
            "name": p,
            "shape": [1, *input_shape] if p == "input" else list(graph.nodes[p].output_shape),
            "dtype": "float32",
        }
        for p in graph.cuts[k].tensors
    ]


def _exit_entries(
    graph: Any, used: Sequence[int], k: int, exit_names: Sequence[str]
) -> list[dict[str, Any]]:
    """The used exits as the manifest lists them, with the side each runs on."""
    return [
        {
            "name": exit_names[j] if j < len(exit_names) else graph.exits[j].site,
            "index": j,
            "site": graph.exits[j].site,
            "position": graph.exits[j].position,
            "side": "edge" if graph.exits[j].position <= k else "server",
        }
        for j in used
    ]


def _predicted(
    metrics: Mapping[str, Any], tasks: Sequence[str], reference: Mapping[str, Any]
) -> dict[str, Any]:
    """What the study predicts for the bundle on the test split (the rest, validation)."""
    return {
        "split": "test",
        "latency_mean": metrics["test_latency_mean"],
        "latency_p95": metrics["test_latency_p95"],
        "bytes": metrics["test_bandwidth"],
        "edge_energy": metrics["test_edge_energy"],
        "accuracy": metrics["test_accuracy"],
        "task_accuracy": dict(
            zip(tasks, metrics.get("test_task_accuracy", [metrics["test_accuracy"]]), strict=False)
        ),
        "exit_rates": metrics["test_exit_rates"],
        "payload_bytes_mean": float(reference["payload_bytes"].mean()),
        #: the latency's parts and the rest are scored on validation only
        "validation": metrics,
    }


def _write(out: Path, files: dict[str, bytes], manifest: dict[str, Any], force: bool) -> None:
    """Write the bundle into a temp folder inside ``out``, then move it into place: a write
    the disk refuses leaves the old bundle (with ``force``) whole and no file of the new
    one. The manifest moves last: a bundle without it is refused as incomplete."""
    new = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=out, prefix=".export-", suffix=".tmp"))
    except OSError as exc:
        raise (write_refused(out, exc) or exc) from None
    try:
        try:
            for name, data in files.items():
                path = stage / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                manifest["files"][name] = B.sha256_of(path)
            (stage / B.MANIFEST).write_text(
                json.dumps(plain(manifest), indent=1) + "\n", encoding="utf-8"
            )
        except OSError as exc:
            shutil.rmtree(stage, ignore_errors=True)
            if new:
                with contextlib.suppress(OSError):
                    out.rmdir()  # as it was: absent
            raise (write_refused(out, exc) or exc) from None
        if force:  # all written: the old bundle gives way (unlinks and renames only)
            for name in (B.MANIFEST, B.REFERENCE):
                (out / name).unlink(missing_ok=True)
            for old in out.iterdir():
                if B.PROGRAM_NAME.fullmatch(old.name):
                    old.unlink(missing_ok=True)
            shutil.rmtree(out / "weights", ignore_errors=True)
        for top in sorted({Path(n).parts[0] for n in files}):
            os.replace(stage / top, out / top)
        os.replace(stage / B.MANIFEST, out / B.MANIFEST)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# ------------------------------------------------------------------------- sparse weights


def _sparse_layers(gm: nn.Module) -> dict[str, nn.Module]:
    """Module path -> the layers that carry a sparsity mask."""
    return {
        name: m
        for name, m in gm.named_modules()
        if isinstance(m._buffers.get(sparsity.MASK_BUFFER), torch.Tensor)
    }


def _container(sparse: dict[str, nn.Module]) -> nn.Module:
    root = nn.Module()
    for name, m in sparse.items():
        B.nest(root, name, copy.deepcopy(m))
    return root


def _sparse_file(sparse: dict[str, nn.Module]) -> tuple[bytes, str]:
    """The sparse layers packed, and the form: ``seed`` where each pattern regenerates
    from its seed, else ``indices``."""
    root = _container(sparse)
    try:
        return sparsity.pack_state(root, form="seed"), "seed"
    except ValueError:
        return sparsity.pack_state(root, form="indices"), "indices"


def _layer_entry(name: str, m: nn.Module) -> dict[str, Any]:
    return {
        "module": name,
        "kind": "linear" if isinstance(m, nn.Linear) else "conv",
        "weight_shape": list(m.weight.shape),
        "groups": int(getattr(m, "groups", 1)),
        "bias": getattr(m, "bias", None) is not None,
    }


def _drop_masks(gm: nn.Module) -> None:
    """The masks are training state: the programs hold only the (masked) weights."""
    for m in gm.modules():
        m._buffers.pop(sparsity.MASK_BUFFER, None)
        m._buffers.pop(sparsity.SEED_BUFFER, None)


def _saved(ep: torch.export.ExportedProgram, sparse: dict[str, nn.Module]) -> bytes:
    """The program's archive with each sparse weight a placeholder (one stored value
    broadcast to the weight's shape), filled from the sparse file at load."""
    for name in sparse:
        key = f"{B.PREFIX}{name}.weight"
        if key in ep.state_dict:
            w = ep.state_dict[key]
            stub = torch.zeros((), dtype=w.dtype).expand(w.shape)
            ep.state_dict[key] = nn.Parameter(stub, requires_grad=False)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    return buf.getvalue()


def _export(
    module: nn.Module, args: tuple[torch.Tensor, ...], side: str, spec: Any
) -> torch.export.ExportedProgram:
    """``torch.export`` of one part; a network it cannot take is one line, not a trace."""
    try:
        return torch.export.export(module, args)
    except Exception as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise InputError(
            spec.path or spec.name,
            "model",
            f"torch.export cannot take the {side} part of {spec.model}: {first[:300]}",
            "export another trial (another cut), or simplify the model's forward",
        ) from None


# ------------------------------------------------------------------------- reference


def _reference(
    scorer: Any, cand: Candidate, used: list[int], codec: Codec | None, x: torch.Tensor
) -> tuple[dict[str, np.ndarray], list[str]]:
    """What the study's scoring says on the test split (see the module docstring), and
    notes where a recomputation of the codec's outputs disagrees with the cached ones."""
    trained, graph, table = scorer.trained, scorer.graph, scorer.table
    k = cand.split
    notes: list[str] = []
    coded = cand.codec is not None and table.cut_bytes[k] > 0
    view = scorer.codec_views[cand.codec][k][1] if coded else None
    path, answer = scorer.decisions(cand, "test")
    answer = np.array(answer, dtype=np.int64)
    t_count, n = answer.shape
    outputs = np.array([*used, trained.test_logits[0].shape[0] - 1])
    # per task [outputs, N]: each output's class, the server's on decoded tensors
    classes = [lg.argmax(-1).numpy() for lg in trained.test_logits]
    if view is not None and codec is not None and codec.lossy:
        fresh = codec_outputs(
            trained.network(), graph, x, trained.test_labels, [k], [codec], tasks=t_count
        )[(k, codec.name)]
        assert fresh.predicted is not None
        on_server = np.array([*(table.exit_position > k), True])
        for t in range(t_count):
            classes[t] = np.where(on_server[:, None], fresh.predicted[t], classes[t])
            if not np.array_equal(fresh.correct[t][on_server], view.correct[t][on_server]):
                notes.append(
                    f"task {t}: the server's outputs computed again on decoded "
                    "tensors differ from the study's cached codec outputs"
                )
    samples = np.arange(n)
    predicted = np.stack([classes[t][outputs[answer[t]], samples] for t in range(t_count)]).astype(
        np.int64
    )
    n_edge = sum(1 for j in used if graph.exits[j].position <= k)
    sends = (path >= n_edge) & (table.cut_bytes[k] > 0)
    sizes = view.sizes if view is not None else np.full(n, int(graph.cuts[k].bytes), dtype=np.int64)
    ref = {
        "answered": answer,
        "predicted": predicted,
        "payload_bytes": np.where(sends, sizes, 0).astype(np.int64),
    }
    for t, name in enumerate(trained.tasks):
        ref[f"whole_logits_{name}"] = trained.test_logits[t][-1].numpy().astype(np.float32)
    return ref, notes
