"""``dse train`` and ``dse train-modes``: one network trained (or loaded from the cache)
and summarised, and what training a model costs centrally, split and hierarchically."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dse.cli import options
from dse.cli.options import load_data_from, write_json
from dse.errors import InputError

MODEL_HELP = "zoo name (dse models list), package.module:factory or file.py:factory"
#: The edge device ``dse train-modes`` prices training on when ``--edge`` is not given.
TRAIN_MODES_EDGE = "jetson-nano"


def add_parser(sub: Any) -> None:
    """Register ``train`` and ``train-modes``."""
    _add_train(sub)
    tm = sub.add_parser(
        "train-modes",
        help="what training a model costs centrally, split "
        "and hierarchically at each exit's cut (or --cut), and optionally one "
        "epoch run for real over loopback",
        parents=[options.data(), options.devices(edge=TRAIN_MODES_EDGE)],
    )
    tm.add_argument("model", help=MODEL_HELP)
    tm.add_argument("--cut", type=int, default=None, help="one cut (default: each exit's)")
    tm.add_argument("--batch-size", type=int, default=64, help="samples per step (default 64)")
    tm.add_argument("--epochs", type=int, default=10, help="epochs the totals are for")
    tm.add_argument(
        "--loopback",
        type=int,
        default=0,
        metavar="SAMPLES",
        help="also train one epoch of split and hierarchical over this many "
        "samples as two processes over loopback, the link paced (0: no)",
    )
    tm.set_defaults(func=cmd_train_modes)


def _add_train(sub: Any) -> None:
    t = sub.add_parser(
        "train",
        help="train one network (or load it from the cache)",
        parents=[
            options.data(),
            options.quiet("no progress bar"),
            options.json_out("write the summary as JSON here"),
        ],
    )
    t.add_argument("model", help=MODEL_HELP)
    t.add_argument(
        "--method",
        default="predefined",
        help="predefined | channels | nm (N:M: density 0.5 is 2:4)",
    )
    t.add_argument("--density", type=float, default=1.0, help="fraction of weights kept")
    t.add_argument(
        "--exits",
        default="all",
        help="all (the sites the model marks) | none | auto (one after each drop of the "
        "spatial size) | comma-separated module paths (of an nn.Sequential: its indices, 2,6)",
    )
    t.add_argument(
        "--tasks",
        default=None,
        help="several tasks of the data set on one "
        "backbone, one head each: comma-separated (e.g. object_shape,object_hue)",
    )
    t.add_argument(
        "--output",
        default=None,
        help="of a model returning a tuple or dict: the index or key of the logits",
    )
    t.add_argument(
        "--epochs",
        type=_epochs,
        default=10,
        help="a number, or auto: until the validation accuracy stops improving "
        "(the best epoch's weights kept; default 10)",
    )
    t.add_argument(
        "--patience",
        type=int,
        default=None,
        help="with --epochs auto: stop after this many epochs without improvement (default 5)",
    )
    t.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="with --epochs auto: at most this many epochs (default 100)",
    )
    t.add_argument("--batch-size", type=int, default=64, help="samples per step (default 64)")
    t.add_argument(
        "--lr", type=float, default=3e-3, help="peak learning rate of AdamW (default 0.003)"
    )
    t.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights and the batch order (default 0)",
    )
    t.add_argument(
        "--weights",
        default=None,
        metavar="FILE",
        help="the model's trained state_dict (torch.save(model.state_dict(), FILE)), "
        "loaded weights-only",
    )
    t.add_argument(
        "--backbone",
        choices=("scratch", "finetune", "frozen"),
        default=None,
        help="with --weights: frozen (default: only exit and task heads train) or "
        "finetune (all of it); without: scratch",
    )
    t.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train: auto (a CUDA GPU when there is one, default), cpu or cuda",
    )
    _add_recipe(t)
    t.add_argument("--cache-dir", default=None, help="default: $DSE_CACHE or .dse-cache")
    t.set_defaults(func=cmd_train)


def _add_recipe(t: Any) -> None:
    """The exit head and the training recipe (see dse.nets.recipes). An option left out
    is None here and TrainConfig's default in the network (the parser imports no torch;
    tests/cli/test_train_cli.py holds the defaults the help names to TrainConfig's)."""
    t.add_argument("--head", default=None, help="exit head: linear | sdn | conv (default sdn)")
    t.add_argument(
        "--lr-schedule",
        default=None,
        help="onecycle | cosine | step | plateau (default onecycle, plateau with --epochs auto)",
    )
    t.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help="AdamW's decoupled weight decay (default 0.0001)",
    )
    t.add_argument(
        "--augment",
        default="",
        help="comma-separated: flip, crop (only where a mirrored or shifted image keeps "
        "its label; default none)",
    )
    t.add_argument(
        "--exit-weight",
        type=float,
        default=None,
        help="each exit's loss weight (default 1)",
    )
    t.add_argument(
        "--exit-schedule",
        default=None,
        help="constant | ramp (SDN: the exit weight grows from 0.01 over training; the "
        "default in central training)",
    )
    t.add_argument(
        "--distill",
        type=float,
        default=0.0,
        help="weight of each exit's distillation from the final output (default 0: none)",
    )


def _epochs(text: str) -> int | str:
    """``--epochs``: a number of epochs or ``auto``."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an integer nor 'auto'") from None


def network_summary(trained: Any) -> dict[str, Any]:
    """Accuracy, sizes and arithmetic of a trained network (what ``dse train`` prints)."""
    from dse.costmodel import build_graph
    from dse.nets import example_input, sparsity

    net = trained.network()
    graph = build_graph(net, example_input(trained.spec.data), name=trained.spec.model)
    acc = trained.accuracy("test")
    return {
        "model": trained.spec.model,
        "method": trained.spec.method,
        "accuracy": acc[-1],
        "exit_accuracy": acc[:-1],
        "exit_sites": list(trained.exit_sites),
        "val_accuracy": trained.accuracy("val")[-1],
        "density": sparsity.realised_density(net),
        "requested_density": trained.spec.density,
        "realised_density": trained.realised_density,
        "classifier": getattr(net, "classifier_name", None),
        "classifier_found": bool(getattr(net, "classifier_found", False)),
        "params": graph.params,
        "nonzero_params": sum(n.nonzero_params for n in graph.nodes.values()),
        "flops": sum(n.sparse_flops for n in graph.nodes.values()),
        "dense_flops": graph.flops,
        "stored_bytes": sparsity.stored_bytes(net, form="indices"),
        "stored_bytes_seed_form": sparsity.stored_bytes(net, form="seed")
        if trained.spec.method in ("predefined", "nm")
        else sparsity.stored_bytes(net),
        "dense_bytes": sparsity.dense_bytes(net),
        "train_seconds": trained.train_seconds,
        "epochs_run": trained.epochs_run,
        "epoch_kept": trained.epoch_kept,
        "learning_problem": trained.learning_problem(),
        "tasks": list(trained.tasks),
        "task_accuracy": dict(zip(trained.tasks, trained.task_accuracy("test"), strict=True)),
        "task_exit_accuracy": {
            t: trained.accuracy("test", i)[:-1] for i, t in enumerate(trained.tasks)
        },
        "cached": trained.cached,
        "key": trained.key,
    }


def _network_spec(args: argparse.Namespace) -> Any:
    """The network ``dse train``'s options describe, each checked."""
    from dse.nets import NetworkSpec, TrainConfig

    auto = {
        k: v
        for k, v in (("patience", args.patience), ("max_epochs", args.max_epochs))
        if v is not None
    }
    if auto and args.epochs != "auto":
        flag = "--patience" if "patience" in auto else "--max-epochs"
        raise InputError(
            "command line", flag, "only used with --epochs auto", "pass --epochs auto, or drop it"
        )
    data = load_data_from(args)
    exits: tuple[str, ...] | str | None = None
    if args.exits == "auto":
        exits = "auto"
    elif args.exits not in (None, "all"):
        exits = () if args.exits == "none" else tuple(e for e in args.exits.split(",") if e)
    tasks = (
        data.check_tasks(
            tuple(t for t in args.tasks.split(",") if t), where="command line", field="--tasks"
        )
        if args.tasks
        else None
    )
    # left out: TrainConfig's own default
    named = {"head": args.head, "weight_decay": args.weight_decay, "exit_weight": args.exit_weight}
    given = {k: v for k, v in named.items() if v is not None}
    try:
        train = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            lr_schedule=args.lr_schedule,
            augment=tuple(a for a in args.augment.split(",") if a),
            exit_schedule=args.exit_schedule,
            distill=args.distill,
            backbone=args.backbone,
            device=args.device,
            **auto,
            **given,
        )
    except InputError as exc:  # named as the option that set it
        raise InputError(
            "command line", "--" + exc.field.replace("_", "-"), exc.reason, exc.fix
        ) from None
    return NetworkSpec(
        model=args.model,
        data=data,
        method=args.method,
        density=args.density,
        exits=exits,
        model_options={} if args.output is None else {"output": args.output},
        train=train,
        tasks=tasks,
        weights=args.weights,
    )


def cmd_train(args: argparse.Namespace) -> int:
    """``dse train MODEL``: train the network (or load it from the cache) and print its
    accuracy per exit (or task), realised density, size and FLOPs; warn when it has not
    learned."""
    from dse.nets import Cache, train_network
    from dse.report import fmt

    spec = _network_spec(args)
    cache = Cache(args.cache_dir)
    if not cache.path(spec.key).exists():  # to be trained and stored: the cache must take it
        cache.check_writable()
    trained = train_network(spec, cache=cache, progress=not args.quiet)
    info = network_summary(trained)
    took = fmt.seconds(trained.train_seconds)
    state = "loaded from cache" if trained.cached else f"trained in {took}"
    brought = (
        f"; the backbone is {args.weights}'s, {spec.backbone}" if spec.weights is not None else ""
    )
    print(
        f"{args.model} on {spec.data.name} ({args.method}, density {args.density:g}): "
        f"{state}, {trained.epochs_text()}{brought}"
    )
    _print_accuracy(info, trained)
    print(
        f"  realised density {info['realised_density']:.4f} of the dense network's weights "
        f"(requested {args.density:g}); non-zero params "
        f"{fmt.count(info['nonzero_params'])} of {fmt.count(info['params'])}; FLOPs "
        f"{fmt.count(info['flops'])} (dense {fmt.count(info['dense_flops'])})"
    )
    print(
        f"  stored {fmt.nbytes(info['stored_bytes'])} with explicit indices, "
        f"{fmt.nbytes(info['stored_bytes_seed_form'])} with seed-regenerated indices, "
        f"dense float32 {fmt.nbytes(info['dense_bytes'])}"
    )
    if info["learning_problem"]:
        print(
            f"dse: warning: {args.model} ({args.method}, density {args.density:g}): "
            f"{info['learning_problem']}; {trained.learning_fix()}",
            file=sys.stderr,
        )
    if args.json:
        write_json(args.json, info)
        print(f"wrote {args.json}")
    return 0


def _print_accuracy(info: dict[str, Any], trained: Any) -> None:
    """Test accuracy at each exit and at the end (of each task, with several) and which
    layers were kept dense."""
    from dse.report import fmt

    if len(info["tasks"]) == 1:
        for site, acc in zip(info["exit_sites"], info["exit_accuracy"], strict=True):
            print(f"  exit after {site:12s} test accuracy {fmt.percent(acc)}")
        print(f"  final                    test accuracy {fmt.percent(info['accuracy'])}")
        found = " (the last layer before the output)" if info["classifier_found"] else ""
        print(f"  final classifier {info['classifier'] or '(none found)'}{found} kept dense")
        return
    for task in info["tasks"]:
        exits = "".join(
            f", exit after {site} {fmt.percent(a)}"
            for site, a in zip(info["exit_sites"], info["task_exit_accuracy"][task], strict=True)
        )
        print(
            f"  task {task}: final test accuracy {fmt.percent(info['task_accuracy'][task])}{exits}"
        )
    print(f"  one head per task ({trained.spec.head.describe()}), kept dense")


def cmd_train_modes(args: argparse.Namespace) -> int:
    """``dse train-modes MODEL``: training time per epoch and in all, edge energy, bytes and
    edge memory of central, split and hierarchical training at each exit's cut (or
    ``--cut``); ``--loopback N``: one epoch of the split modes run for real."""
    from dse.costmodel import build_graph, load_device, load_link, training_cost
    from dse.nets import NetworkSpec, TrainConfig, build_network, example_input
    from dse.report import fmt

    data = load_data_from(args)
    net = build_network(NetworkSpec(model=args.model, data=data))
    graph = build_graph(net, example_input(data), name=args.model)
    edge, server, link = load_device(args.edge), load_device(args.server), load_link(args.link)
    cuts = [args.cut] if args.cut is not None else [e.position for e in graph.exits]
    if not cuts:
        raise InputError(
            "command line", "--cut", f"{args.model} has no exit", "give the cut to train at"
        )
    if not all(0 <= k < len(graph.cuts) for k in cuts):
        raise InputError(
            "command line",
            "--cut",
            f"cut {args.cut} is outside 0..{len(graph.cuts) - 1}",
            "see `dse profile` for the cuts",
        )
    samples = len(data.train.x)
    print(
        f"{args.model} on {data.name} ({samples} training samples, batch "
        f"{args.batch_size}, {args.epochs} epochs): edge {edge.name}, server {server.name}, "
        f"link {link.name}"
    )
    for k in cuts:
        print(
            f"cut {k} (after {graph.cuts[k].after}, {fmt.nbytes(graph.cuts[k].bytes)} per sample):"
        )
        for mode in ("central", "split", "hierarchical"):
            c = training_cost(
                graph,
                edge,
                server,
                link,
                mode=mode,
                cut=k,
                samples=samples,
                batch_size=args.batch_size,
            )
            print(
                f"  {mode:12s} epoch {c.epoch_s:9.3g} s  training {c.time_s(args.epochs):9.3g}"
                f" s  edge {c.edge_energy_j(args.epochs):9.3g} J  link "
                f"{fmt.nbytes(c.bytes(args.epochs))}  edge memory "
                f"{fmt.nbytes(c.edge_memory_bytes)}"
            )
        if args.loopback > 0:
            from dse.deploy import train_loopback

            for mode in ("split", "hierarchical"):
                spec = NetworkSpec(
                    model=args.model,
                    data=data,
                    cut=k,
                    train=TrainConfig(epochs=1, batch_size=args.batch_size, mode=mode),
                )
                print("  " + train_loopback(spec, link=link, samples=args.loopback).text())
    return 0
