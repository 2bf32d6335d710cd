"""`train`: every chosen impl trains the same MLP on the same batches; accuracies must agree.

One stored run: a row per impl (workload "train", phase "train") with its learning curve,
epoch times, time to the target accuracy and test metrics. The final test accuracies of the
impls that trained must lie within SPREAD_LIMIT_PP of each other: the cross-rung proof that
every backward pass is right. Exit code 1 when they do not, or when an impl failed.

Each impl trains in a child process of its own (harness/train/worker.py), as `run`'s cells do,
so an impl that crashes costs its own row only; `--in-process` trains them all here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness import registry
from harness.commands.common import add_results, names
from harness.models import HYPER
from harness.results import machine_state, store
from harness.train import datasets, scores, session
from harness.train import loop as train

# Widths by dataset when --layers is not given: hidden layers between features and classes.
DEFAULT_HIDDEN = {"digits": "32", "mnist": "128,64", "synthetic": "128,64"}


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train an MLP end to end on each impl; check their accuracies agree",
        description="Train the same MLP from the same initial weights on the same seeded "
        "mini-batches with each impl (forward, loss, backward and optimizer step "
        "are the impl's ops), evaluate after every epoch outside the clock, store "
        "one row per impl under results/<machine>/ and print the cross-rung "
        f"table. Exit code 1 if the final test accuracies spread over "
        f"{scores.SPREAD_LIMIT_PP} points or an impl failed.",
    )
    parser.add_argument(
        "--impl",
        action="append",
        metavar="NAME",
        help="impl(s), repeatable or comma-separated, or `all` (default: numpy; see `list`)",
    )
    parser.add_argument(
        "--dataset",
        choices=datasets.DATASETS,
        default=None,
        help="digits (scikit-learn, the `data` extra), mnist (IDX files from "
        "--mnist DIR) or synthetic (MNIST-shaped, for timing); "
        "default digits",
    )
    parser.add_argument(
        "--mnist",
        metavar="DIR",
        help="folder of the MNIST IDX files, raw or .gz (implies --dataset mnist)",
    )
    parser.add_argument("--epochs", type=int, default=20, help="default 20")
    parser.add_argument("--batch", type=int, default=32, help="mini-batch size (default 32)")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument(
        "--hidden",
        metavar="H[,H...]",
        help="hidden widths; input and output widths come from the dataset "
        f"(default: digits {DEFAULT_HIDDEN['digits']}, mnist and "
        f"synthetic {DEFAULT_HIDDEN['mnist']})",
    )
    shape.add_argument(
        "--layers", metavar="I-H-...-C", help="every width, input first, e.g. 784-128-64-10"
    )
    parser.add_argument("--opt", choices=list(HYPER), default="sgd", help="optimizer (default sgd)")
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: "
        + ", ".join(f"{opt} {hyper['lr']:g}" for opt, hyper in HYPER.items())
        + ")",
    )
    parser.add_argument(
        "--target-acc",
        type=float,
        default=0.95,
        metavar="FRACTION",
        help="test accuracy whose time and epoch are reported (default 0.95)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="initial weights and batch order (default 0)"
    )
    parser.add_argument(
        "--load",
        metavar="PATH",
        help="start from weights saved by --save (checked against the MLP); "
        "with --epochs 0 this only evaluates them",
    )
    parser.add_argument(
        "--save",
        metavar="PATH",
        help="save the trained weights as npz (with several impls, one file each: PATH-<impl>.npz)",
    )
    add_results(parser)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="train every impl in this process (no crash isolation; for debugging)",
    )
    parser.set_defaults(func=run)


def layers_for(args, data) -> tuple:
    """--layers as given, else the dataset's features, --hidden (or its default), classes."""
    if args.layers:
        try:
            return tuple(int(w) for w in args.layers.split("-"))
        except ValueError:
            raise ValueError(
                f"--layers must be widths joined by '-', e.g. 784-128-64-10, got {args.layers!r}"
            ) from None
    hidden = args.hidden if args.hidden is not None else DEFAULT_HIDDEN[data.name]
    try:
        widths = [int(w) for w in hidden.replace("-", ",").split(",") if w]
    except ValueError:
        raise ValueError(
            f"--hidden must be widths joined by ',', e.g. 128,64, got {hidden!r}"
        ) from None
    return (data.features, *widths, data.classes)


def dataset_for(args) -> str:
    """--mnist DIR means MNIST; --dataset says otherwise only by mistake."""
    if args.mnist and args.dataset not in (None, "mnist"):
        raise ValueError(
            f"--mnist {args.mnist} reads MNIST, but --dataset says {args.dataset}: drop one of them"
        )
    return "mnist" if args.mnist else args.dataset or "digits"


def save_path(base: str, impl: str, several: bool) -> Path:
    path = Path(base)
    if not several:
        return path
    stem = path.name[:-4] if path.name.endswith(".npz") else path.name
    return path.with_name(f"{stem}-{impl}.npz")


def table(rows: list, target: float) -> str:
    """impl, final test accuracy, epochs and training time to target, median epoch time."""
    lines = [
        f"{'impl':<14} {'status':<11} {'test acc':>8} {'epochs to':>9} {'time to':>9} "
        f"{'epoch time':>10}",
        f"{'':<14} {'':<11} {'':>8} {f'{target:.0%}':>9} {f'{target:.0%} (s)':>9} "
        f"{'median (s)':>10}",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"{row['impl']:<14} {row['status']:<11} {row.get('reason', '')}")
            continue
        epochs = row["epochs_to_target"] or "-"
        to_target = (
            f"{row['time_to_target_s']:.3f}" if row["time_to_target_s"] is not None else "not hit"
        )
        epoch_s = f"{row['t_median_s']:.4f}" if row["t_median_s"] is not None else "-"
        lines.append(
            f"{row['impl']:<14} {'ok':<11} {row['test_acc']:>8.2%} {epochs:>9} "
            f"{to_target:>9} {epoch_s:>10}"
        )
    return "\n".join(lines)


def run(args) -> int:
    impls = names(args.impl, "--impl") or ["numpy"]
    if impls == ["all"]:
        impls = registry.names()
    for name in impls:
        registry.get_class(name)  # an unknown name fails here, listing the valid ones
    # an unwritable --save fails here, before any training
    saves = (
        {name: train.check_save_path(save_path(args.save, name, len(impls) > 1)) for name in impls}
        if args.save
        else {}
    )
    try:
        data = datasets.load(dataset_for(args), args.mnist)
    except ImportError as error:  # digits without scikit-learn: one line, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = train.Config(
        layers=layers_for(args, data),
        epochs=args.epochs,
        batch=args.batch,
        opt=args.opt,
        lr=args.lr,
        seed=args.seed,
        target_acc=args.target_acc,
    )
    train.check_fits(config, data)
    weights = train.load_weights(args.load, config.layers) if args.load else None
    print(
        f"training MLP {config.layers_label} on {data.describe()}; {config.opt} "
        f"lr {config.learning_rate:g}, batch {config.batch}, {config.epochs} epochs, "
        f"seed {config.seed}",
        file=sys.stderr,
    )

    warning = machine_state.busy_warning()
    if warning:
        print(warning, file=sys.stderr)
    writer = store.open_run(args.results)
    size = scores.size_fields(config, data)
    # What a child needs to do the same: it loads the dataset and the weights itself.
    spec = {
        "dataset": data.name,
        "mnist": args.mnist,
        "load": args.load,
        "config": {**config.__dict__, "layers": list(config.layers)},
    }
    for name in impls:
        save = saves.get(name)
        if args.in_process or registry.unavailable_reason(name):
            fields, result = session.train_one(name, data, config, weights)
            saved = train.save_weights(save, result.weights) if result and save else None
        else:
            fields, saved = session.train_isolated(name, {**spec, "save": save and str(save)})
        writer.append({**fields, "workload": "train", **size, "phase": "train"})
        if saved:
            print(f"  {name}: weights saved to {saved}", file=sys.stderr)

    print(table(writer.rows, config.target_acc))
    spread = scores.spread_pp(writer.rows)
    trained = sum(row["status"] == "ok" for row in writer.rows)
    print(
        f"\naccuracy spread over {trained} impl(s) that trained: {spread:.2f} points "
        f"(limit {scores.SPREAD_LIMIT_PP})"
    )
    print(f"stored {len(writer.rows)} rows in {writer.path}")
    failed = [row["impl"] for row in writer.rows if row["status"] == "error"]
    if failed:
        print(f"FAILED: {', '.join(failed)} raised an error while training", file=sys.stderr)
    if spread > scores.SPREAD_LIMIT_PP:
        print(
            f"FAILED: final test accuracies spread {spread:.2f} points > "
            f"{scores.SPREAD_LIMIT_PP}: some impl's backward pass or update is wrong",
            file=sys.stderr,
        )
    return 1 if failed or spread > scores.SPREAD_LIMIT_PP else 0
