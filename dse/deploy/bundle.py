"""A deployed bundle read back and run: the edge programs, the payload, the server programs.

A bundle is the folder ``dse export`` writes: ``manifest.json``; each side's stage programs
in the order they run (``programs`` in the manifest: ``edge.pt2``, then ``edge.1.pt2``, ...
after each edge exit; ``server.pt2``, ``server.1.pt2``, ... unless the cut is edge-only; see
:mod:`dse.deploy.programs` for what each takes and returns); ``reference.npz``; and
``weights/sparse.dsew`` for a sparse network (its sparse layers compressed, the programs
holding only placeholders for them). :func:`load_bundle` checks every file against the
manifest's sha256, fills the sparse weights in, and gives a :class:`Bundle` whose
:meth:`Bundle.edge` runs one sample up to the cut and packs the payload (the codec's byte
packing and lossless coder run here, its numeric part in the programs), and whose
:meth:`Bundle.server` reads a payload and runs the rest.

Format 2 (this one) added the stage programs; a format-1 bundle (one program per side, its
exits inside as ``torch.cond``) is read as a side of one stage.

The sha256 in the manifest catches damage (a truncated copy, a flipped bit), not
tampering: whoever can change a file can change the manifest too. Sign the folder, or
trust where it came from. Files are read only inside the folder (a symbolic link out of
it is refused), and nothing in a program is unpickled but plain tensors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import pickle
import re
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from dse.errors import InputError
from dse.nets import Codec, PayloadError, Quantized, read_payload, sparsity

FORMAT = 2  # what dse export writes
READS = (1, 2)  # the formats this reader takes
MANIFEST = "manifest.json"
EDGE = "edge.pt2"  # the edge's first program
SERVER = "server.pt2"  # the server's first program
#: a stage program's file name: ``edge.pt2``, ``edge.1.pt2``, ..., ``server.pt2``, ...
PROGRAM_NAME = re.compile(r"(edge|server)(\.[1-9][0-9]*)?\.pt2")
#: the deepest nesting of lists and tables a manifest may have (``dse export`` writes 4)
MAX_DEPTH = 32
REFERENCE = "reference.npz"
SPARSE = "weights/sparse.dsew"
#: where the exported modules keep the network's layers (state_dict keys start with it)
PREFIX = "runner.gm."


@dataclass(frozen=True)
class EdgeResult:
    """What the edge part did with one sample."""

    #: per task: index into manifest["exits"] of the edge exit that answered it, or None
    #: (not answered on the edge); at the edge-only cut the final heads answer on the
    #: edge: len(manifest["exits"])
    answered: tuple[int | None, ...]
    #: per task: [1, classes] logits where answered, else None
    logits: tuple[torch.Tensor | None, ...]
    #: the payload to send (codec format v2, or raw float32 without a codec); None when
    #: every task was answered on the edge
    payload: bytes | None
    seconds: float  # wall time of the edge program and the encoding


@dataclass(frozen=True)
class ServerResult:
    """What the server part did with one payload."""

    #: per task: index into manifest["exits"] of the server exit that answered it, or
    #: len(manifest["exits"]) for the final head; -1 for a task that was not open
    answered: tuple[int, ...]
    logits: tuple[torch.Tensor, ...]  # per task [1, classes] (zeros for a task not open)
    seconds: float  # wall time of decoding and the server program


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _bad(folder: Path, name: str, field: str, reason: str, fix: str) -> InputError:
    return InputError(folder / name, field, reason, fix)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a bundle folder, checked for its format and keys."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(
            path,
            "manifest",
            "missing: not a dse bundle folder",
            "give the folder `dse export ... --out DIR` wrote",
        )
    outside(folder, MANIFEST, "manifest")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            path, "manifest", f"unreadable JSON ({exc})", "export the bundle again"
        ) from None
    except RecursionError:  # the decoder recurses once per level of nesting
        manifest = None
    if manifest is None or _deeper(manifest, MAX_DEPTH):
        raise InputError(
            path,
            "manifest",
            f"nested deeper than {MAX_DEPTH} levels: not a dse manifest",
            "export the bundle again",
        )
    if not isinstance(manifest, dict):
        raise InputError(path, "manifest", "not a JSON object", "export the bundle again")
    fmt = manifest.get("format")
    if isinstance(fmt, bool) or fmt not in READS:
        raise InputError(
            path,
            "format",
            f"bundle format {fmt!r}; this dse reads formats {READS[0]} to {READS[-1]}",
            "export the bundle again with this dse",
        )
    need = ("tasks", "classes", "exits", "cut", "crossing", "codec", "files", "edge_only")
    missing = [k for k in need if k not in manifest]
    if missing:
        raise InputError(path, missing[0], "missing from the manifest", "export the bundle again")
    why = _manifest_error(manifest)
    if why:
        raise InputError(path, why[0], why[1], "export the bundle again with dse export")
    return manifest


def _deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and tables more than ``limit`` levels deep (found
    without recursion)."""
    todo = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            todo += [(v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return False


def program_names(side: str, stages: int) -> list[str]:
    """The file names of a side's ``stages`` programs, in run order."""
    return [f"{side}{'' if i == 0 else f'.{i}'}.pt2" for i in range(stages)]


def programs_of(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Per side, its program files in run order (a format-1 bundle: one per side)."""
    if manifest.get("format") == 1:
        return {"edge": [EDGE], "server": [] if manifest.get("edge_only") else [SERVER]}
    return {side: list(names) for side, names in manifest["programs"].items()}


#: The most weights one sparse layer of a manifest may have (its dense skeleton is built
#: before the packed file fills it): 2**28, 1 GiB of float32.
MAX_LAYER_WEIGHTS = 2**28


def _sizes(value: Any) -> bool:
    """A list of sizes: positive integers (no booleans)."""
    return isinstance(value, list) and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in value
    )


def _inside(name: Any) -> bool:
    """A file name relative to the bundle folder that stays inside it."""
    return (
        isinstance(name, str)
        and bool(name)
        and not Path(name).is_absolute()
        and ".." not in Path(name).parts
        and "\\" not in name
        and "\0" not in name
    )


def _manifest_error(m: dict[str, Any]) -> tuple[str, str] | None:
    """``(field, reason)`` of the first manifest entry a bundle is read through that has
    the wrong type or shape, or None: what reading it would otherwise trip over."""
    tasks, files, sparse = m["tasks"], m["files"], m.get("sparse")
    if not (isinstance(tasks, list) and tasks and all(isinstance(t, str) for t in tasks)):
        return "tasks", "not a non-empty list of task names"
    if not (_sizes(m["classes"]) and len(m["classes"]) == len(tasks)):
        return "classes", "not one class count (>= 1) per task"
    if not isinstance(m["exits"], list):
        return "exits", "not a list"
    if not isinstance(m["cut"], int) or isinstance(m["cut"], bool) or m["cut"] < 0:
        return "cut", "not a cut index (an integer >= 0)"
    if not isinstance(m["edge_only"], bool):
        return "edge_only", "not true or false"
    if not (
        isinstance(m["crossing"], list)
        and all(isinstance(c, dict) and _sizes(c.get("shape")) for c in m["crossing"])
    ):
        return "crossing", "not a list of tensors with a shape of sizes"
    if m["codec"] is not None and not isinstance(m["codec"], str):
        return "codec", "not a codec name or null"
    if "input_shape" in m and not (_sizes(m["input_shape"]) and m["input_shape"]):
        return "input_shape", "not a list of sizes"
    if not (
        isinstance(files, dict) and all(_inside(k) and isinstance(v, str) for k, v in files.items())
    ):
        return "files", "not a table of file names inside the bundle and their sha256"
    if m["format"] != 1:
        programs = m.get("programs")
        if not (
            isinstance(programs, dict)
            and set(programs) == {"edge", "server"}
            and all(
                isinstance(names, list) and names == program_names(side, len(names))
                for side, names in programs.items()
            )
            and programs["edge"]
            and (not programs["server"]) == m["edge_only"]
        ):
            return "programs", (
                "not a table of the edge's and the server's program files "
                "(edge.pt2, edge.1.pt2, ...; server.pt2, ... unless edge-only)"
            )
    if sparse is not None:
        layers = sparse.get("layers") if isinstance(sparse, dict) else None
        if not (
            isinstance(sparse, dict)
            and _inside(sparse.get("file"))
            and sparse["file"] in files
            and isinstance(layers, list)
        ):
            return "sparse", "not a table of a listed file and its layers"
        for e in layers:
            if not (
                isinstance(e, dict)
                and isinstance(e.get("module"), str)
                and e["module"]
                and _sizes(e.get("weight_shape"))
                and 2 <= len(e["weight_shape"]) <= 5
                and isinstance(e.get("bias"), bool)
                and math.prod(e["weight_shape"]) <= MAX_LAYER_WEIGHTS
                and _sizes([e.get("groups", 1)])
                and (
                    e.get("kind") == "linear"
                    and len(e["weight_shape"]) == 2
                    or e.get("kind") != "linear"
                    and len(e["weight_shape"]) > 2
                )
            ):
                return "sparse.layers", f"{e!r:.60} is not a layer entry"
    return None


def outside(folder: Path, name: str, field: str) -> Path:
    """``folder / name``, refused (:class:`InputError`) where a symbolic link on the way
    leads out of ``folder``: a bundle's files are its own."""
    path = folder / name
    try:
        real = path.resolve()
        root = folder.resolve()
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise InputError(
            path, field, f"cannot be resolved ({exc})", "copy the bundle folder again"
        ) from None
    if not real.is_relative_to(root):
        raise InputError(
            path,
            field,
            f"is a symbolic link out of the bundle (to {real})",
            "copy the files themselves into the bundle (cp -rL), not links to them",
        )
    return path


def check_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists is inside the bundle, exists and has its sha256, and
    every program it runs is listed."""
    files = manifest["files"]
    programs = programs_of(manifest)
    unlisted = [n for names in programs.values() for n in names if n not in files]
    if not isinstance(files, dict) or unlisted:
        raise _bad(
            folder,
            MANIFEST,
            "files",
            f"does not list the program {unlisted[0] if unlisted else EDGE}",
            "export the bundle again",
        )
    for name, digest in files.items():
        path = outside(folder, name, "files")
        if not path.is_file():
            raise InputError(
                path,
                "files",
                "missing from the bundle",
                "copy the whole bundle folder, or export it again",
            )
        if sha256_of(path) != digest:
            raise InputError(
                path,
                "sha256",
                "does not match the manifest: the file was changed or damaged",
                "copy it again, or export the bundle again",
            )


def _skeleton(layers: list[dict[str, Any]]) -> nn.Module:
    """Layers of the shapes the sparse file holds (what unpack_state fills)."""
    root = nn.Module()
    for entry in layers:
        shape = [int(d) for d in entry["weight_shape"]]
        groups = int(entry.get("groups", 1))
        bias = bool(entry["bias"])
        if entry["kind"] == "linear":
            layer: nn.Module = nn.Linear(shape[1], shape[0], bias=bias)
        else:
            conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[len(shape) - 2]
            layer = conv(shape[1] * groups, shape[0], tuple(shape[2:]), groups=groups, bias=bias)
        nest(root, entry["module"], layer)
    return root


def nest(root: nn.Module, name: str, module: nn.Module) -> None:
    """Place ``module`` in ``root`` at the dotted path ``name``, creating empty modules on
    the way (so a state packed from a network's layers unpacks into it by name)."""
    parent = root
    *path, last = name.split(".")
    for part in path:
        if not hasattr(parent, part):
            parent.add_module(part, nn.Module())
        parent = getattr(parent, part)
    parent.add_module(last, module)


def sparse_weights(folder: Path, manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Module path + ``.weight`` -> the weight expanded from the compressed file."""
    info = manifest.get("sparse")
    if not info:
        return {}
    try:
        root = _skeleton(info["layers"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:  # e.g. a clashing path
        raise InputError(
            folder / MANIFEST,
            "sparse.layers",
            f"cannot build its layers ({type(exc).__name__}: {exc})",
            "export the bundle again",
        ) from None
    sparsity.unpack_state((folder / info["file"]).read_bytes(), root)
    return {
        f"{e['module']}.weight": root.get_submodule(e["module"]).weight.detach().clone()
        for e in info["layers"]
    }


#: Members of a .pt2 archive that ``torch.export.load`` would unpickle with plain pickle
#: (script and opaque objects): a dse export never writes them, and their pickle could run
#: code, so an archive holding one is refused.
_PICKLED_MEMBERS = ("custom_obj_", "opaque_obj_")


@contextlib.contextmanager
def _weights_only() -> Iterator[None]:
    """Every ``torch.load`` inside (those ``torch.export.load`` makes of pickled weights
    and constants included, which ask for ``weights_only=False``) loads weights only."""
    old = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"]
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = old


def load_program(path: Path, weights: dict[str, torch.Tensor]) -> nn.Module:
    """An exported program with its sparse weights filled in, as a callable module.

    Nothing in the archive is unpickled but plain tensors (``weights_only``): a bundle
    from elsewhere can hold no code that runs on load.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(
            path,
            "program",
            f"not a .pt2 archive ({exc})",
            "export the bundle again with dse export",
        ) from None
    pickled = [m for m in members if m.rsplit("/", 1)[-1].startswith(_PICKLED_MEMBERS)]
    if pickled:
        raise InputError(
            path,
            "program",
            f"holds a pickled object ({pickled[0]}) that loading would run",
            "export the bundle again with dse export",
        )
    logged: list[BaseException] = []
    try:
        with warnings.catch_warnings(), _weights_only(), _quiet_torch(logged):
            warnings.simplefilter("ignore")
            ep = torch.export.load(str(path))
            for name, value in weights.items():
                key = PREFIX + name
                if key in ep.state_dict:
                    ep.state_dict[key] = nn.Parameter(value, requires_grad=False)
            return ep.module()
    except Exception as exc:  # noqa: BLE001 - any unreadable archive is bad input
        raise InputError(
            path, "program", _load_failure(exc, logged), "export the bundle again with dse export"
        ) from None


#: The loggers ``torch.export.load`` may write a traceback to before it raises.
_TORCH_LOGGERS = ("torch.export", "torch._export")


class _Swallow(logging.Filter):
    """Drops every record, keeping the exceptions they carry."""

    def __init__(self, into: list[BaseException]) -> None:
        super().__init__()
        self.into = into

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            self.into.append(record.exc_info[1])
        return False


@contextlib.contextmanager
def _quiet_torch(into: list[BaseException]) -> Iterator[None]:
    """Nothing torch's export loggers (and their children) log inside is shown: a refused
    archive is one line, not a logged traceback first. The exceptions they logged are
    put ``into`` the list (the reason the error names)."""
    swallow = _Swallow(into)
    names = [
        n
        for n in (*_TORCH_LOGGERS, *logging.root.manager.loggerDict)
        if any(n == t or n.startswith(t + ".") for t in _TORCH_LOGGERS)
    ]
    loggers = [logging.getLogger(n) for n in dict.fromkeys(names)]
    for lg in loggers:
        lg.addFilter(swallow)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(swallow)


def _load_failure(exc: BaseException, logged: list[BaseException]) -> str:
    """One short line for a program torch could not load: what the weights-only
    unpickler refused, or the first error torch logged (its own error then only points at
    that log)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if isinstance(exc, pickle.UnpicklingError):
        why = re.search(r"(?:WeightsUnpickler error|Unpickler error): ([^\n]*?)(?:\. |$)", text)
        return (
            "holds a pickle that weights-only loading refuses"
            + (f" ({why.group(1)[:200]})" if why else "")
            + ": it could run code"
        )
    cause = logged[0] if logged else exc
    if cause is not exc:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(cause))
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return f"cannot load it ({type(cause).__name__}: {line[:300]})"


class Chain:
    """One side's stage programs, run in turn: the next runs only while the stage before
    says the sample has not left (its ``done`` is false). See :mod:`dse.deploy.programs`
    for the signatures."""

    def __init__(self, programs: Sequence[Callable[..., Any]], tasks: int) -> None:
        if not programs:
            raise ValueError("a chain needs at least one program")
        self.programs = list(programs)
        self.tasks = tasks

    def __call__(
        self, first: tuple[torch.Tensor, ...], open_tasks: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """``(answered, *logits, *rest)``: ``rest`` the last stage's payload (edge) or
        nothing (server, or a sample that left at an exit)."""
        out = tuple(self.programs[0](*first))
        for program in self.programs[1:]:
            done, answered, *rest = out
            if bool(done):
                return (answered, *rest[: self.tasks])
            out = tuple(program(open_tasks, answered, *rest))
        return out


class Bundle:
    """A loaded bundle: :meth:`edge` for one sample, :meth:`server` for one payload."""

    def __init__(
        self, folder: Path, manifest: dict[str, Any], edge: Chain, server: Chain | None
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.edge_chain = edge
        self.server_chain = server
        self.tasks: tuple[str, ...] = tuple(manifest["tasks"])
        self.codec = Codec.parse(manifest["codec"]) if manifest["codec"] else None
        self.shapes = [tuple(int(d) for d in c["shape"]) for c in manifest["crossing"]]
        self.quantised = self.codec is not None and self.codec.quantised

    def edge(self, x: torch.Tensor) -> EdgeResult:
        """Run the edge program on one sample (batch dimension 1) and pack its payload."""
        start = time.perf_counter()
        shape = tuple(self.manifest["input_shape"])
        if tuple(x.shape) != shape:
            raise InputError(
                "edge input",
                "shape",
                f"{tuple(x.shape)}, the bundle takes {shape}",
                "give one sample with the batch dimension 1",
            )
        t = len(self.tasks)
        with torch.no_grad():
            out = self.edge_chain((x.to(torch.float32),), torch.ones(t, dtype=torch.bool))
        answered = tuple(None if int(a) < 0 else int(a) for a in out[0])
        logits = tuple(
            None if a is None else lg for a, lg in zip(answered, out[1 : 1 + t], strict=True)
        )
        payload = None
        if not self.manifest["edge_only"] and any(a is None for a in answered):
            payload = self.pack(list(out[1 + t :]))
        return EdgeResult(answered, logits, payload, time.perf_counter() - start)

    def pack(self, values: list[torch.Tensor]) -> bytes:
        """The payload bytes of the edge program's payload outputs."""
        if self.codec is None:  # raw little-endian float32, crossing order, no header
            return b"".join(v.detach().numpy().astype("<f4").tobytes() for v in values)
        step = 3 if self.quantised else 1
        groups = [
            Quantized(*values[i : i + 3]) if self.quantised else Quantized(values[i], None, None)
            for i in range(0, len(values), step)
        ]
        return self.codec.pack(groups)

    def unpack(self, payload: bytes) -> list[torch.Tensor]:
        """The server program's payload inputs; :class:`PayloadError` for a payload that
        is not one this bundle's edge sends."""
        if self.codec is None:
            if not isinstance(payload, bytes | bytearray | memoryview):
                raise PayloadError("<bytes>", f"expected bytes, got {type(payload).__name__}")
            payload = bytes(payload)
            need = sum(4 * int(np.prod(s)) for s in self.shapes)
            if len(payload) != need:
                raise PayloadError(
                    "length", f"{len(payload)} bytes; this bundle's raw float32 payload has {need}"
                )
            out, pos = [], 0
            for s in self.shapes:
                n = int(np.prod(s))
                arr = np.frombuffer(payload, "<f4", n, pos).astype(np.float32)
                out.append(torch.from_numpy(arr).reshape(s))
                pos += 4 * n
            return out
        codec, coded = read_payload(payload)
        if codec != self.codec:
            raise PayloadError(
                "codec",
                f"the payload was coded with {codec.name}, this "
                f"bundle's edge sends {self.codec.name}",
            )
        shapes = [tuple(q.values.shape) for q in coded]
        if shapes != self.shapes:
            raise PayloadError("shape", f"tensors {shapes}; this bundle's cut sends {self.shapes}")
        flat: list[torch.Tensor] = []
        for q in coded:
            flat += [q.values, q.scale, q.lo] if self.quantised else [q.values]
        return flat

    def server(self, payload: bytes, open_tasks: tuple[bool, ...] | None = None) -> ServerResult:
        """Decode a payload and run the server program; ``open_tasks``: which tasks are
        still unanswered (None: all)."""
        if self.server_chain is None:
            raise InputError(
                self.folder / MANIFEST,
                "cut",
                "the cut is edge-only: the bundle has no server part",
                "run the edge part alone",
            )
        start = time.perf_counter()
        t = len(self.tasks)
        open_ = (True,) * t if open_tasks is None else tuple(bool(o) for o in open_tasks)
        if len(open_) != t:
            raise InputError(
                "server",
                "open_tasks",
                f"{len(open_)} flags for {t} tasks",
                "give one flag per task",
            )
        inputs = self.unpack(payload)
        opened = torch.tensor(open_, dtype=torch.bool)
        with torch.no_grad():
            out = self.server_chain((opened, *inputs), opened)
        answered = tuple(int(a) for a in out[0])
        logits = tuple(out[1 : 1 + t])
        return ServerResult(answered, logits, time.perf_counter() - start)

    def reference(self) -> dict[str, np.ndarray]:
        """The arrays of ``reference.npz`` (the study's own answers on the test split),
        checked for the arrays and shapes a run compares with."""
        if REFERENCE not in self.manifest["files"]:
            raise InputError(
                self.folder / MANIFEST,
                "files",
                f"does not list {REFERENCE}",
                "export the bundle again with dse export",
            )
        path = outside(self.folder, REFERENCE, "files")
        try:
            with np.load(path, allow_pickle=False) as z:
                ref = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise InputError(
                path, "<file>", f"cannot read: {exc}", "export the bundle again with dse export"
            ) from None
        for key in ("answered", "predicted", "payload_bytes"):
            if key not in ref:
                raise InputError(path, key, "missing", "export the bundle again with dse export")
        tasks = len(self.tasks)
        if ref["answered"].shape[0] != tasks or ref["predicted"].shape != ref["answered"].shape:
            raise InputError(
                path,
                "answered",
                f"shape {ref['answered'].shape} does not fit {tasks} tasks",
                "export the bundle again with dse export",
            )
        return ref


def load_bundle(folder: str | Path) -> Bundle:
    """Read a bundle folder: manifest, sha256 of every file, programs, sparse weights.

    :class:`InputError` (one line: file, field, fix) for a missing or changed file, an
    unreadable manifest or one of another format version.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            folder, "bundle", "no such folder", "give the folder `dse export ... --out DIR` wrote"
        )
    manifest = read_manifest(folder)
    check_files(folder, manifest)
    weights = sparse_weights(folder, manifest)
    tasks = len(manifest["tasks"])
    chains = {
        side: Chain([load_program(folder / name, weights) for name in names], tasks)
        for side, names in programs_of(manifest).items()
        if names
    }
    return Bundle(folder, manifest, chains["edge"], chains.get("server"))
