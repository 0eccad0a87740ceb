"""A user's own network, trained outside dse the way a user would, and their data.

``MODEL_SOURCE`` is the user's model file (an ``nn.Sequential`` with one exit site);
:func:`train_outside` is their training script: plain PyTorch on their own normalisation,
saving ``model.state_dict()``. Their data lies as an ``.npz`` (:func:`write_npz`) or as a
folder of PNGs, one subfolder per class and a ``test/`` (:func:`write_folder`); both hold
the same images: scikit-learn's 8x8 digits, 1500 to train on and 297 to test.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

MODEL_SOURCE = """\
import torch.nn as nn


def build():
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
    )
    net.exit_sites = ("6", "10")  # after each pooling
    return net
"""
MEAN, STD = 0.3, 0.4
"""The user's normalisation of the [0, 1] pixels, what the spec states."""
N_TRAIN = 1500


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits as uint8 8x8 images (0..255) and their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0 * 255.0).round().astype(np.uint8), d.target.astype(np.int64)


def pixels_to_input(x: np.ndarray) -> torch.Tensor:
    """What the user's own script feeds the model: uint8 N x 8 x 8 to normalised floats."""
    t = torch.from_numpy(x.astype(np.float32) / 255.0)[:, None]
    return (t - MEAN) / STD


def write_model(folder: Path) -> Path:
    path = folder / "usernet.py"
    path.write_text(MODEL_SOURCE)
    return path


def load_user_model(path: Path) -> torch.nn.Module:
    """The user's model built from their file (what their script does)."""
    spec = importlib.util.spec_from_file_location("usernet_outside", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module, ModuleType)
    return module.build()


def train_outside(model_file: Path, out: Path, *, epochs: int = 6, seed: int = 0) -> Path:
    """The user's training script: Adam on the first 1500 digits, their normalisation;
    saves the state_dict to ``out``."""
    x, y = digits()
    torch.manual_seed(seed)
    net = load_user_model(model_file)
    inputs, labels = pixels_to_input(x[:N_TRAIN]), torch.from_numpy(y[:N_TRAIN])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(N_TRAIN)
        for i in range(0, N_TRAIN, 50):
            idx = order[i : i + 50]
            opt.zero_grad()
            F.cross_entropy(net(inputs[idx]), labels[idx]).backward()
            opt.step()
    torch.save(net.state_dict(), out)
    return out


def user_logits(model_file: Path, weights: Path, x: torch.Tensor) -> torch.Tensor:
    """The user's trained model on ``x``, in eval mode, as they would run it."""
    net = load_user_model(model_file)
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    with torch.no_grad():
        return net(x)


def write_npz(path: Path) -> Path:
    """The digits as the user's ``.npz``: ``x``/``y`` to train on, ``x_test``/``y_test``."""
    x, y = digits()
    np.savez(path, x=x[:N_TRAIN], y=y[:N_TRAIN], x_test=x[N_TRAIN:], y_test=y[N_TRAIN:])
    return path


def write_folder(root: Path) -> Path:
    """The same digits as PNG files: ``root/d<k>/<i>.png`` and ``root/test/d<k>/<i>.png``
    (file names sorted in the order of the images)."""
    x, y = digits()
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        sub = root / "test" if i >= N_TRAIN else root
        folder = sub / f"d{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    return root


def folder_order(y_test: np.ndarray) -> np.ndarray:
    """The order a folder's test split reads the test images in: by class, then by file."""
    return np.argsort(y_test, kind="stable")
