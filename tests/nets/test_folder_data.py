"""The user's images as they lie (``folder``) and the normalisation a spec states.

A small folder of PNGs is made in each test: one subfolder per class, an optional
``test/``; the pixels are known, so the tensors are checked value by value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_cli_refused
from PIL import Image

from dse.errors import InputError
from dse.nets import load_data
from dse.nets.data.splits import normalise

CLASSES = ("cat", "dog", "owl")


def make_folder(
    root: Path,
    *,
    per_class: int = 6,
    test: int = 0,
    side: int = 10,
    grey: bool = False,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """PNGs ``root/CLASS/i.png`` (and ``root/test/CLASS/i.png``): image i of class c is a
    constant ``40 * c + 3 * i`` (plus a little noise); returns each file's pixels by its
    relative path."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for c, name in enumerate(CLASSES):
        for sub, count in (("", per_class), ("test/", test)):
            folder = root / sub / name
            for i in range(count):
                folder.mkdir(parents=True, exist_ok=True)
                shape = (side, side) if grey else (side, side, 3)
                a = np.clip(40 * c + 3 * i + rng.integers(0, 3, shape), 0, 255).astype(np.uint8)
                Image.fromarray(a).save(folder / f"{i:02d}.png")
                pixels[f"{sub}{name}/{i:02d}.png"] = a
    return pixels


def chw(a: np.ndarray) -> torch.Tensor:
    """A file's pixels as the C x H x W float32 a data set holds before normalising."""
    t = torch.from_numpy(a.astype(np.float32) / 255.0)
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1)


def test_a_test_folder_is_the_official_test_split_in_file_order(tmp_path: Path) -> None:
    pixels = make_folder(tmp_path, test=2)
    ds = load_data("folder", root=tmp_path, normalise=False)
    assert ds.classes == {"class": 3} and ds.task == "class" and ds.input_shape == (3, 10, 10)
    # the test split is test/ read class by class (sorted), file by file (sorted)
    want = [k for k in sorted(pixels) if k.startswith("test/")]
    assert len(ds.test) == len(want) == 6
    for i, k in enumerate(want):
        assert torch.equal(ds.test.x[i], chw(pixels[k])), k
        assert int(ds.test.y["class"][i]) == CLASSES.index(k.split("/")[1])
    assert len(ds.train) + len(ds.val) == 18
    # every training image is one of the files, with its class as label
    train = {chw(v).numpy().tobytes(): k for k, v in pixels.items() if not k.startswith("test/")}
    for x, y in zip(ds.train.x, ds.train.y["class"], strict=True):
        name = train[x.numpy().tobytes()]
        assert CLASSES[int(y)] == name.split("/")[0]


def test_without_a_test_folder_three_splits_are_drawn_by_the_seed(tmp_path: Path) -> None:
    make_folder(tmp_path, per_class=10)
    a = load_data("folder", root=tmp_path, seed=1)
    b = load_data("folder", root=tmp_path, seed=1)
    c = load_data("folder", root=tmp_path, seed=2)
    assert len(a.train) + len(a.val) + len(a.test) == 30
    assert a.key == b.key and torch.equal(a.test.x, b.test.x)
    assert a.key != c.key and not torch.equal(a.test.x, c.test.x)
    # the key follows the files' bytes
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "owl" / "00.png")
    assert load_data("folder", root=tmp_path, seed=1).key != a.key


def test_images_are_resized_to_size_and_grey_sets_have_one_channel(tmp_path: Path) -> None:
    make_folder(tmp_path, side=12, grey=True)
    ds = load_data("folder", root=tmp_path, size=6)
    assert ds.input_shape == (1, 6, 6)
    # one colour image makes the set RGB, the grey ones repeated to three channels
    Image.fromarray(np.full((12, 12, 3), (200, 10, 10), np.uint8)).save(tmp_path / "cat" / "z.png")
    rgb = load_data("folder", root=tmp_path, normalise=False)
    assert rgb.input_shape == (3, 12, 12)
    images = torch.cat([rgb.train.x, rgb.val.x, rgb.test.x])
    grey = [torch.equal(g[0], g[1]) and torch.equal(g[0], g[2]) for g in images]
    assert len(grey) == 19 and sum(grey) == 18
    red = images[grey.index(False)]
    assert torch.allclose(red[:, 0, 0], torch.tensor([200, 10, 10]) / 255.0)


def test_images_of_several_sizes_need_size(tmp_path: Path) -> None:
    make_folder(tmp_path)
    Image.fromarray(np.zeros((14, 14, 3), np.uint8)).save(tmp_path / "dog" / "big.png")
    with pytest.raises(InputError) as info:
        load_data("folder", root=tmp_path)
    assert info.value.field == "size" and "14x14" in str(info.value)
    assert "size = N" in str(info.value)
    assert load_data("folder", root=tmp_path, size=8).input_shape == (3, 8, 8)


def test_stated_normalisation_is_applied_to_the_pixels(tmp_path: Path) -> None:
    make_folder(tmp_path, test=2)
    mean, std = [0.5, 0.4, 0.3], [0.25, 0.2, 0.1]
    pix = load_data("folder", root=tmp_path, normalise=False, mean=mean, std=std)
    ds = load_data("folder", root=tmp_path, mean=mean, std=std)
    assert ds.mean == (0.5, 0.4, 0.3) and ds.std == (0.25, 0.2, 0.1)
    want = (pix.test.x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.equal(ds.test.x, want)
    assert "mean=0.5/0.4/0.3" in ds.key and "pixels" in pix.key and pix.key != ds.key
    # one value is every channel's
    one = load_data("folder", root=tmp_path, mean=0.5, std=[0.25])
    assert one.mean == (0.5,) * 3 and one.std == (0.25,) * 3
    # the set's own statistics, recorded: a device normalising the pixels gets the same inputs
    own = load_data("folder", root=tmp_path)
    raw = load_data("folder", root=tmp_path, normalise=False)
    assert torch.equal(normalise(raw.test.x.clone(), own.mean, own.std), own.test.x)
    assert "mean" not in own.key


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"mean": [0.5]}, "std", "missing"),
        ({"mean": [0.5, 0.5], "std": [0.2, 0.2]}, "mean", "2 values for images of 3"),
        ({"mean": [0.5], "std": [0.0]}, "std", "<= 0"),
        ({"mean": ["a"], "std": [1.0]}, "mean", "finite numbers"),
    ],
)
def test_a_bad_normalisation_is_one_line(
    tmp_path: Path, options: dict[str, object], field: str, words: str
) -> None:
    make_folder(tmp_path)
    with pytest.raises(InputError) as info:
        load_data("folder", root=tmp_path, **options)  # type: ignore[arg-type]
    assert info.value.field == field and words in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_folders_are_one_line_naming_the_file(tmp_path: Path) -> None:
    make_folder(tmp_path, test=1)
    (tmp_path / "dog" / "05.png").write_bytes(b"not a png at all")
    with pytest.raises(InputError) as info:
        load_data("folder", root=tmp_path)
    assert info.value.where.endswith("05.png") and info.value.field == "image"

    (tmp_path / "dog" / "05.png").unlink()
    (tmp_path / "emu").mkdir()
    (tmp_path / "emu" / "notes.txt").write_text("no image here")
    with pytest.raises(InputError) as info:
        load_data("folder", root=tmp_path)
    assert info.value.where.endswith("emu") and "holds no image" in info.value.reason

    (tmp_path / "emu" / "notes.txt").unlink()
    (tmp_path / "emu").rmdir()
    (tmp_path / "test" / "yak").mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "test" / "yak" / "0.png")
    with pytest.raises(InputError) as info:
        load_data("folder", root=tmp_path)
    assert info.value.where.endswith("yak") and "training classes" in info.value.reason


def test_an_image_folder_layout_is_explained(tmp_path: Path) -> None:
    make_folder(tmp_path / "train")  # torchvision's train/CLASS layout one level down
    (tmp_path / "val").mkdir()
    with pytest.raises(InputError) as info:
        load_data("folder", root=tmp_path)
    assert info.value.where.endswith("train") and "holds folders: cat, dog, owl" in str(info.value)
    with pytest.raises(InputError) as info:
        load_data("folder", root=tmp_path / "train" / "cat")
    assert info.value.field == "classes"
    with pytest.raises(InputError) as info:
        load_data("folder")
    assert info.value.field == "root"


def test_dse_train_refuses_a_broken_image_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "owl" / "bad.jpg").write_bytes(b"\xff\xd8\xff broken")
    argv = ["train", "mlp", "--data", "folder", "--data-root", str(tmp_path / "imgs")]
    assert_cli_refused(
        [*argv, "--quiet", "--cache-dir", str(tmp_path / "cache")],
        capsys,
        where=tmp_path / "imgs" / "owl" / "bad.jpg",
        words=["image: cannot be read as an image"],
    )
