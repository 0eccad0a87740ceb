"""Model registry: the built-in zoo, any ``package.module:factory``, torchvision/timm names.

``load_model(name, ...)`` returns an ``nn.Module``; an unknown name raises an InputError
listing the known ones. Zoo models carry ``exit_sites`` and ``classifier_name``; other
models get no exit sites unless they define ``exit_sites`` themselves.

A model other than the zoo's is built as its factory writes it: ``num_classes`` (and the
input geometry) reach it only when the caller gives them. It must return one tensor (the
logits); a model returning a tuple, list or dict is taken only with the option ``output``
naming the element to use (an index or a key), and is otherwise refused with the names of
its outputs.

A model the user has trained comes with its weights: :func:`load_weights` reads a
state_dict saved with ``torch.save(model.state_dict(), FILE)``, weights only (a file that
would unpickle anything else is refused, never run), into the model as built, and
:func:`weights_digest` is the file's sha256, what the training key holds of it.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from dse.costmodel import trace
from dse.errors import InputError
from dse.nets.zoo import MLP, VGG, MobileNet, ResNet


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., nn.Module]
    description: str
    default_input: tuple[int, int, int]  # C, H, W


_ZOO: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry("mlp", MLP, "MLP of the predefined-sparsity paper (hidden 256, 128)", (1, 8, 8)),
        ModelEntry("vgg-s", VGG, "VGG-style CNN, 3 stages of conv-BN-ReLU + max-pool", (3, 32, 32)),
        ModelEntry("resnet-s", ResNet, "CIFAR ResNet, 3 stages of 2 basic blocks", (3, 32, 32)),
        ModelEntry("mobilenet-s", MobileNet, "MobileNetV2-style inverted residuals", (3, 32, 32)),
    )
}


def list_models() -> list[str]:
    """Names of the built-in zoo."""
    return sorted(_ZOO)


def model_entry(name: str) -> ModelEntry:
    if name not in _ZOO:
        raise InputError(
            "model",
            name,
            "unknown model",
            f"known: {', '.join(list_models())}; or give package.module:factory",
        )
    return _ZOO[name]


def default_input(name: str) -> tuple[int, int, int]:
    """The (C, H, W) a model is profiled at when no input shape is given."""
    return _ZOO[name].default_input if name in _ZOO else (3, 224, 224)


def load_model(
    name: str,
    *,
    in_channels: int | None = None,
    input_size: int | None = None,
    num_classes: int | None = None,
    width: float = 1.0,
    **options: Any,
) -> nn.Module:
    """Build a model by zoo name, ``package.module:factory`` or torchvision/timm name.

    ``num_classes`` None leaves the factory's own default (the zoo's is 10). The option
    ``output`` (an index or key) picks the logits of a model that returns several outputs.
    """
    if name in _ZOO:
        entry = _ZOO[name]
        c, h, _ = entry.default_input
        classes = {} if num_classes is None else {"num_classes": num_classes}
        try:
            return entry.factory(
                in_channels=in_channels or c,
                input_size=input_size or h,
                width=width,
                **classes,
                **options,
            )
        except TypeError as exc:
            raise InputError(
                "model",
                name,
                f"bad model option: {exc}",
                "see the factory's keyword arguments in dse/nets/zoo.py",
            ) from None
    output = options.pop("output", None)
    if ":" in name:
        # The input geometry, classes and width reach a user factory too, if it takes them.
        given = {
            "in_channels": in_channels,
            "input_size": input_size,
            "width": width,
            "num_classes": num_classes,
        }
        given = {k: v for k, v in given.items() if v is not None and (k != "width" or v != 1.0)}
        return single_output(_from_path(name, **given, **options), name, output)
    for loader in (_torchvision, _timm):
        model = loader(name, num_classes)
        if model is not None:
            return single_output(model, name, output)
    model_entry(name)  # raises with the known names
    raise AssertionError("unreachable")


def accepts_width(name: str) -> bool:
    """Whether the model's factory takes ``width`` (what the ``channels`` method needs):
    the zoo's do; a ``module:factory`` does when it names a ``width`` argument;
    torchvision and timm models do not."""
    if name in _ZOO:
        return True
    if ":" not in name:
        return False
    module_name, _, attr = name.rpartition(":")
    try:
        module = (
            _import_file(module_name)
            if module_name.endswith(".py")
            else (importlib.import_module(module_name))
        )
        params = inspect.signature(getattr(module, attr)).parameters
    except Exception:  # noqa: BLE001 - load_model reports a broken factory itself
        return False
    return "width" in params


def single_output(model: nn.Module, name: str, output: Any = None) -> nn.Module:
    """``model`` if it returns one tensor; else a traced copy returning only ``output``.

    A tuple, list or dict of outputs is refused (InputError naming them) unless ``output``
    names one: an index for a tuple or list, a key for a dict.
    """
    gm = trace(model, name=name)
    node = next(n for n in gm.graph.nodes if n.op == "output")
    value = node.args[0]
    if isinstance(value, fx.Node) and output is None:
        return model
    if isinstance(value, fx.Node):
        raise InputError(
            name,
            "output",
            f"the model returns one tensor; there is no output {output!r} to choose",
            "drop the output option",
        )
    if isinstance(value, dict):
        kind, keys = "dict", list(value)
    elif isinstance(value, tuple | list):
        kind, keys = type(value).__name__, list(range(len(value)))
    else:
        raise InputError(
            name,
            "forward",
            f"the model returns {value!r}, not a tensor",
            "return the logits tensor",
        )
    shown = ", ".join(map(repr, keys))
    if output is None:
        raise InputError(
            name,
            "output",
            f"the model returns a {kind} of {len(keys)} outputs "
            f"({shown}); dse needs one tensor, the logits",
            f"name the one to use: --output {keys[0]} (in a spec: "
            f"[model] options = {{ output = {keys[0]!r} }})",
        )
    key: Any = output
    if kind != "dict":
        try:
            key = int(output)
        except (TypeError, ValueError):
            key = None
    if key not in keys:
        raise InputError(
            name,
            "output",
            f"{output!r} is not one of the model's outputs ({shown})",
            f"use one of {shown}",
        )
    chosen = value[key]
    if not isinstance(chosen, fx.Node):
        raise InputError(
            name, "output", f"output {output!r} is {chosen!r}, not a tensor", f"use one of {shown}"
        )
    node.args = (chosen,)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    for attr in ("exit_sites", "classifier_name"):
        if hasattr(model, attr):
            setattr(gm, attr, getattr(model, attr))
    return gm


def _from_path(spec: str, **options: Any) -> nn.Module:
    module_name, _, attr = spec.rpartition(":")
    dotted = re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module_name)
    if not (module_name.endswith(".py") or dotted) or not attr.isidentifier():
        raise InputError(
            "model",
            spec,
            "is not 'package.module:factory' or 'file.py:factory'",
            "e.g. mypkg.nets:build or ./nets.py:build",
        )
    try:
        if module_name.endswith(".py"):
            module = _import_file(module_name)
        else:
            module = importlib.import_module(module_name)
    except (ImportError, FileNotFoundError) as exc:
        raise InputError(
            "model",
            spec,
            f"cannot import {module_name!r}: {exc}",
            "put the module on PYTHONPATH or run from its folder",
        ) from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed as it ran
        raise InputError(
            "model",
            spec,
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}",
            "fix the module",
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(
            "model",
            spec,
            f"{module_name} has no callable {attr!r}",
            "name a function or nn.Module class that builds the model",
        )
    accepted = _accepted(factory, options)
    try:
        model = factory(**accepted)
    except Exception as exc:  # noqa: BLE001 - the user's factory failed on its arguments
        raise InputError(
            "model",
            spec,
            f"the factory raised {type(exc).__name__}: {exc}",
            "name a factory that builds an nn.Module from these options "
            f"({', '.join(accepted) or 'none'})",
        ) from None
    if not isinstance(model, nn.Module):
        raise InputError(
            "model",
            spec,
            f"factory returned {type(model).__name__}, not nn.Module",
            "return a torch.nn.Module",
        )
    return model


_FILE_MODULES: dict[tuple[str, int], Any] = {}  # (resolved path, mtime) -> module


def _import_file(path: str) -> Any:
    """The module of a model file, executed once per version of the file (a study builds
    its networks many times)."""
    import importlib.util
    import sys
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no such file {path}")
    version = (str(file.resolve()), file.stat().st_mtime_ns)
    if version in _FILE_MODULES:
        return _FILE_MODULES[version]
    spec = importlib.util.spec_from_file_location(file.stem, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(file.stem, module)
    spec.loader.exec_module(module)
    _FILE_MODULES[version] = module
    return module


def _accepted(factory: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return options
    return {k: v for k, v in options.items() if k in params}


def _torchvision(name: str, num_classes: int | None) -> nn.Module | None:
    try:
        import torchvision.models as tvm  # optional
    except Exception:
        return None
    if name in tvm.list_models():
        classes = {} if num_classes is None else {"num_classes": num_classes}
        return tvm.get_model(name, weights=None, **classes)
    return None


def _timm(name: str, num_classes: int | None) -> nn.Module | None:
    try:
        import timm  # optional
    except Exception:
        return None
    if timm.is_model(name):
        classes = {} if num_classes is None else {"num_classes": num_classes}
        return timm.create_model(name, pretrained=False, **classes)
    return None


# --------------------------------------------------------------------------------------
# the user's trained weights
# --------------------------------------------------------------------------------------

WEIGHTS_FIX = "save the trained model's state_dict: torch.save(model.state_dict(), FILE)"
_DIGESTS: dict[tuple[str, int, int], str] = {}  # (resolved path, mtime, size) -> sha256


def weights_digest(path: str | Path) -> str:
    """The sha256 of a weights file (what a training key holds of it), read once per
    version of the file; a missing file is the one-line error."""
    file = _weights_file(path)
    stat = file.stat()
    version = (str(file.resolve()), stat.st_mtime_ns, stat.st_size)
    if version not in _DIGESTS:
        _DIGESTS[version] = hashlib.sha256(file.read_bytes()).hexdigest()
    return _DIGESTS[version]


def _weights_file(path: str | Path) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(
            file,
            "weights",
            "no such file" if not file.exists() else "is not a file",
            "give the path of the trained model's state_dict (" + WEIGHTS_FIX + ")",
        )
    return file


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict file read weights-only onto the CPU: a mapping of names to tensors, or
    the one-line error that says how to save one."""
    file = _weights_file(path)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsupported = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        reason = (
            f"is not weights-only: it pickles {unsupported.group(1)}, which loading "
            "weights-only refuses (a whole model, not its state_dict)"
            if unsupported
            else "is not a file torch.save wrote"
        )
        raise InputError(file, "weights", reason, WEIGHTS_FIX) from None
    except Exception as exc:  # noqa: BLE001 - garbage makes the unpickler raise anything
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            file, "weights", f"is not a file torch.save wrote ({first[:160]})", WEIGHTS_FIX
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InputError(
            file,
            "weights",
            f"holds a {type(state).__name__}, not a state_dict (names -> tensors)",
            WEIGHTS_FIX,
        )
    return dict(state)


def load_weights(model: nn.Module, path: str | Path, *, name: str = "model") -> nn.Module:
    """Load the state_dict in ``path`` into ``model`` (in place; returned), strictly: a
    name the model lacks or lacks in the file, or a tensor of another shape, is the
    one-line error naming the file, what differs and the fix."""
    file = Path(path).expanduser()
    state = read_weights(file)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"the model's {_some(missing)} missing from the file")
        if unexpected:
            parts.append(f"the file's {_some(unexpected)} not in the model")
        raise InputError(
            file,
            "weights",
            f"does not match {name}: {'; '.join(parts)}",
            "give the state_dict of the model [model] builds (same layers, same names), "
            "or build that model (its factory and options)",
        )
    shapes = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if shapes:
        k = shapes[0]
        more = f" (and {len(shapes) - 1} more)" if len(shapes) > 1 else ""
        raise InputError(
            file,
            "weights",
            f"does not match {name}: {k} is {list(state[k].shape)} in the file, "
            f"{list(own[k].shape)} in the model{more}",
            "build the model for the same input and classes as it was trained for "
            "([data] size and channels, the model's options), or give its own weights",
        )
    model.load_state_dict(state, strict=True)
    return model


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")
