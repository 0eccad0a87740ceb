"""What several commands share: the options declared once, as argparse parent parsers
(the study's storage, quiet, a JSON output, the edge/server/link profiles, the data set),
and writing a command's JSON output.

A command takes a shared option by naming its parent (``parents=[options.storage()]``);
each parent is made once per process, so every command that names it holds the very same
argparse action, and an option's flag, default and help text are written in one place.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

STORAGE_HELP = (
    "the study's storage: journal | sqlite | memory | a .journal path | an RDB "
    "URL (postgresql+psycopg://user@host/db) | grpc://host:port (default: the "
    "spec's when running it, else studies/NAME.journal or NAME.db)"
)
QUIET_HELP = "no progress bars or progress lines"
DEFAULT_EDGE = "raspberry-pi-4"
DEFAULT_SERVER = "a100"
DEFAULT_LINK = "lte"

#: Every parent parser made so far, by what it declares (a flag and its variant).
_PARENTS: dict[tuple[Hashable, ...], argparse.ArgumentParser] = {}


def _parent(
    key: tuple[Hashable, ...],
    declare: Callable[[argparse.ArgumentParser], Any],
    *,
    parents: Sequence[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    """The parent parser ``key`` names, made by ``declare`` (on top of ``parents``' options)
    the first time it is asked for."""
    if key not in _PARENTS:
        parser = argparse.ArgumentParser(add_help=False, parents=list(parents))
        declare(parser)
        _PARENTS[key] = parser
    return _PARENTS[key]


def parents() -> tuple[argparse.ArgumentParser, ...]:
    """Every parent parser made so far (what a test checks each shared option against)."""
    return tuple(_PARENTS.values())


def storage() -> argparse.ArgumentParser:
    """``--storage``: where the study is stored (None: the spec's, else found by name)."""
    return _parent(("storage",), lambda p: p.add_argument("--storage", help=STORAGE_HELP))


def quiet(help: str = QUIET_HELP) -> argparse.ArgumentParser:
    """``--quiet``: no progress output; ``help`` says what it silences for the command."""
    return _parent(
        ("quiet", help), lambda p: p.add_argument("--quiet", action="store_true", help=help)
    )


def json_out(help: str) -> argparse.ArgumentParser:
    """``--json FILE``: the command's figures as JSON (None: none written); ``help`` says
    which figures."""
    return _parent(("json", help), lambda p: p.add_argument("--json", help=help))


def devices(*, edge: str = DEFAULT_EDGE) -> argparse.ArgumentParser:
    """``--edge``, ``--server``, ``--link``: one profile each, by name or .toml path;
    ``edge`` is the edge device a command assumes when none is given (the server and link
    options are the same for every command)."""
    edge_help = "edge device profile (name or .toml)"
    edge_option = _parent(
        ("edge", edge), lambda p: p.add_argument("--edge", default=edge, help=edge_help)
    )

    def server_and_link(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", default=DEFAULT_SERVER, help="server profile (name or .toml)")
        p.add_argument("--link", default=DEFAULT_LINK, help="link profile (name or .toml)")

    rest = _parent(("server", "link"), server_and_link)
    return _parent(("devices", edge), lambda p: None, parents=[edge_option, rest])


def data() -> argparse.ArgumentParser:
    """The data set a command trains on: its name, files, split seed and reshaping (None:
    the data set's own; a given value, 0 included, is checked by ``dse.nets.load_data``)."""

    def declare(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data",
            default="digits",
            help="digits | shapes | shapes3d | mnist | fashion-mnist | cifar10 | npz | folder",
        )
        p.add_argument(
            "--data-root",
            default=None,
            help="folder with the data files (mnist, cifar10), the .npz file (npz), or "
            "the folder of images, one subfolder per class (folder)",
        )
        p.add_argument(
            "--data-seed",
            type=int,
            default=0,
            help="seed of the train/validation/test split (default 0)",
        )
        p.add_argument("--size", type=int, default=None, help="resize images to SIZE x SIZE")
        p.add_argument("--n", type=int, default=None, help="number of samples (shapes) or cap")
        p.add_argument("--noise", type=float, default=None, help="salt-and-pepper fraction")
        p.add_argument("--channels", type=int, default=None, help="force 1 or 3 channels")
        p.add_argument(
            "--mean",
            type=_floats,
            default=None,
            help="normalise (pixel - mean) / std with these per-channel values (pixels in "
            "[0, 1]; e.g. 0.485,0.456,0.406), as the network was trained; default: the "
            "training split's own",
        )
        p.add_argument("--std", type=_floats, default=None, help="with --mean: per-channel std")

    return _parent(("data",), declare)


def _floats(text: str) -> list[float]:
    """``--mean``/``--std``: comma-separated numbers."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not comma-separated numbers") from None


def load_data_from(args: argparse.Namespace) -> Any:
    """The data set the :func:`data` options name."""
    from dse.nets import load_data

    # None means "not given"; any given value (0 included) goes to load_data to be checked
    opts = {
        k: getattr(args, k)
        for k in ("size", "n", "channels", "noise", "mean", "std")
        if getattr(args, k, None) is not None
    }
    return load_data(args.data, root=args.data_root, seed=args.data_seed, **opts)


def json_text(data: Any) -> str:
    """``data`` as indented JSON, numpy scalars and tuples made plain by the one
    normaliser the studies store their attributes with (``dse.search.plain``)."""
    from dse.search import plain

    return json.dumps(plain(data), indent=2)


def write_json(path: str, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (a reader never sees half of it)."""
    from dse.nets import atomic_write_bytes

    atomic_write_bytes(Path(path), json_text(data).encode())
