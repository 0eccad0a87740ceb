"""The ``dse`` command line: each subcommand parses, calls one library function, prints.

One module per command group registers its subcommands (``add_parser(subparsers)``):
``profile`` (profile, calibrate, devices, links, models), ``train`` (train,
train-modes), ``study`` (study, storage, verify, compare), ``answer`` (recommend, front),
``report`` (report, sweep, demo) and ``deploy`` (export, serve, run-split); the options
several commands share are declared once, in ``options``.

Exit codes: 0 success, 2 bad input (one line naming the file, the field and the fix),
1 internal failure (an exception no one expected, with its traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dse.cli import answer, deploy, profile, report, study, train
from dse.errors import InputError, environment_error

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Decide how to run a neural network across an edge device and a server: where to cut it,
which early exits the edge part carries and at which confidence threshold, and how sparse
its layers are. dse trains the candidates it needs, scores them with a per-layer cost
model of your devices and link, and reports the Pareto fronts."""

EPILOG = """\
A first run: dse demo (a small study, its baselines, verification, report and what its
front spans).
Exit codes: 0 success, 2 bad input (one line naming the file, the field and the fix),
1 internal failure."""

#: The command groups, in the order ``dse --help`` lists their subcommands.
GROUPS = (profile, train, study, answer, report, deploy)


def build_parser() -> argparse.ArgumentParser:
    """The ``dse`` parser: every command group's subcommands under one program."""
    # plain text: Python 3.14's argparse colours help on a terminal unless told not to
    # (its subcommands take the setting from here)
    plain = {"color": False} if sys.version_info >= (3, 14) else {}
    parser = argparse.ArgumentParser(
        prog="dse",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **plain,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dse ARGV``; returns the exit code: 0 success, 2 bad input (its one-line
    reason on stderr), 130 interrupted. An internal failure is an exception left to
    propagate: Python prints its traceback and exits with 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "names_study", False):  # a NAME from the command line names files
            from dse.search import check_study_name

            check_study_name(args.name, where="<command line>", field="NAME")
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"dse: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and closed early
        sys.stderr.close()
        return 0
    except OSError as exc:  # the machine refused (a full disk, a folder under a file, no
        # permission) where no writer said so itself
        refused = environment_error(exc)
        if refused is None:
            raise
        print(f"dse: error: {refused}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dse: interrupted", file=sys.stderr)
        return 130
