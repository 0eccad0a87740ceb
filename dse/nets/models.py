"""Model registry: the built-in zoo, any ``package.module:factory``, torchvision/timm names.

``load_model(name, ...)`` returns an ``nn.Module``; an unknown name raises an InputError
listing the known ones. Zoo models carry ``exit_sites`` and ``classifier_name``; other
models get no exit sites unless they define ``exit_sites`` themselves.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

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
            "model", name, "unknown model",
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
    num_classes: int = 10,
    width: float = 1.0,
    **options: Any,
) -> nn.Module:
    """Build a model by zoo name, ``package.module:factory`` or torchvision/timm name."""
    if name in _ZOO:
        entry = _ZOO[name]
        c, h, _ = entry.default_input
        try:
            return entry.factory(
                in_channels=in_channels or c,
                input_size=input_size or h,
                num_classes=num_classes,
                width=width,
                **options,
            )
        except TypeError as exc:
            raise InputError("model", name, f"bad model option: {exc}",
                             "see the factory's keyword arguments in dse/nets/zoo.py") from None
    if ":" in name:
        # The input geometry and width reach a user factory too, if it takes them.
        given = {"in_channels": in_channels, "input_size": input_size, "width": width}
        given = {k: v for k, v in given.items() if v is not None and (k != "width" or v != 1.0)}
        return _from_path(name, num_classes=num_classes, **given, **options)
    for loader in (_torchvision, _timm):
        model = loader(name, num_classes)
        if model is not None:
            return model
    model_entry(name)  # raises with the known names
    raise AssertionError("unreachable")


def _from_path(spec: str, **options: Any) -> nn.Module:
    module_name, _, attr = spec.rpartition(":")
    try:
        if module_name.endswith(".py"):
            module = _import_file(module_name)
        else:
            module = importlib.import_module(module_name)
    except (ImportError, FileNotFoundError) as exc:
        raise InputError("model", spec, f"cannot import {module_name!r}: {exc}",
                         "put the module on PYTHONPATH or run from its folder") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError("model", spec, f"{module_name} has no callable {attr!r}",
                         "name a function or nn.Module class that builds the model")
    accepted = _accepted(factory, options)
    model = factory(**accepted)
    if not isinstance(model, nn.Module):
        raise InputError("model", spec, f"factory returned {type(model).__name__}, not nn.Module",
                         "return a torch.nn.Module")
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


def _torchvision(name: str, num_classes: int) -> nn.Module | None:
    try:
        import torchvision.models as tvm  # optional
    except Exception:
        return None
    if name in tvm.list_models():
        return tvm.get_model(name, weights=None, num_classes=num_classes)
    return None


def _timm(name: str, num_classes: int) -> nn.Module | None:
    try:
        import timm  # optional
    except Exception:
        return None
    if timm.is_model(name):
        return timm.create_model(name, pretrained=False, num_classes=num_classes)
    return None
