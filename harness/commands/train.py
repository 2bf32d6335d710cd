"""`train`: every chosen impl trains the same model on the same batches; their results must agree.

The models: the MLP or the CNN on a classification dataset, or a small GPT on the shipped
character corpus (--model). One stored run: a row per impl and seed (workload "train", phase
"train") with its learning curve, epoch times, time to target, test metrics and what the
report draws per layer. Per seed, the impls that trained must agree: the classifiers' final
test accuracies within SPREAD_LIMIT_PP points, the GPT's loss of step 50 within LOSS_LIMIT_REL
(train/checks.py): the cross-rung proof that every backward pass is right. Exit code 1 when
they do not, or when an impl failed. With --seeds N each impl's time to target is also scored
MLPerf's way (the fastest and slowest runs dropped, the rest averaged).

Each impl trains in a child process of its own (harness/train/worker.py), as `run`'s cells do,
so an impl that crashes costs its own rows only; `--in-process` trains them all here. Progress
shows in harness/train/live.py's view, fed by each child's interim messages.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from harness import registry
from harness.commands.common import add_results, names
from harness.models import HYPER
from harness.results import machine_state, store
from harness.train import checks, datasets, live, lm, nets, plan, runs, table
from harness.train.weights import check_save_path


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train an MLP, a CNN or a GPT end to end on each impl; check they agree",
        description="Train the same model from the same initial weights on the same seeded "
        "mini-batches with each impl (forward, loss, backward and optimizer step are the "
        "impl's ops), evaluate after every epoch outside the clock, store one row per impl "
        "and seed under results/<machine>/ and print the cross-rung table. Exit code 1 if the "
        f"final test accuracies spread over {checks.SPREAD_LIMIT_PP} points (the GPT: its "
        f"step-50 losses over {checks.LOSS_LIMIT_REL:g} relative) or an impl failed.",
    )
    add = parser.add_argument
    add(
        "--impl",
        action="append",
        metavar="NAME",
        help="impl(s), repeatable or comma-separated, or `all` (default: numpy; see `list`)",
    )
    add("--model", choices=plan.MODELS, default="mlp", help="mlp (default), cnn or gpt")
    add(
        "--dataset",
        choices=datasets.DATASETS,
        default=None,
        help="mlp and cnn: digits "
        "(scikit-learn, the `data` extra; the default), mnist (IDX files from --mnist DIR) or "
        "synthetic (MNIST-shaped, for timing)",
    )
    add(
        "--mnist",
        metavar="DIR",
        help="folder of the MNIST IDX files, raw or .gz (implies --dataset mnist)",
    )
    add(
        "--epochs",
        type=int,
        default=None,
        help="mlp 20, cnn 15; gpt: evaluation intervals (steps = epochs x --eval-every)",
    )
    add("--batch", type=int, default=None, help="mini-batch size (mlp and cnn 32, gpt 8 sequences)")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument(
        "--hidden",
        metavar="H[,H...]",
        help="the MLP's hidden widths; input "
        "and output widths come from the dataset (default: digits "
        f"{plan.DEFAULT_HIDDEN['digits']}, mnist and synthetic {plan.DEFAULT_HIDDEN['mnist']})",
    )
    shape.add_argument(
        "--layers",
        metavar="I-H-...-C",
        help="the MLP's every width, input first, e.g. 784-128-64-10",
    )
    add(
        "--channels",
        metavar="1-F1-F2",
        help="the CNN's channels: 1 (grey images), then "
        f"each conv's filters (default {'-'.join(map(str, nets.CNN_CHANNELS))})",
    )
    add(
        "--image",
        type=int,
        metavar="SIDE",
        help="the CNN's image side: the data's images "
        "nearest-neighbour upsampled to it (default: the data's own, 8 for digits)",
    )
    add("--steps", type=int, help=f"gpt: Adam steps (default {lm.LMConfig.steps})")
    for option, help_ in plan.GPT_SIZES.items():
        add(f"--{option.replace('_', '-')}", type=int, help=f"gpt: {help_}")
    add(
        "--opt",
        choices=list(HYPER),
        default=None,
        help="optimizer (default: mlp sgd, cnn and gpt adam)",
    )
    add(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: mlp the optimizer's, "
        + ", ".join(f"{opt} {hyper['lr']:g}" for opt, hyper in HYPER.items())
        + f"; cnn {plan.DEFAULTS['cnn']['lr']:g} and gpt {plan.DEFAULTS['gpt']['lr']:g} with adam)",
    )
    add(
        "--target-acc",
        type=float,
        default=None,
        metavar="FRACTION",
        help="mlp and cnn: test "
        "accuracy whose time and epoch are reported (default: mlp 0.95, cnn 0.98)",
    )
    add(
        "--target-loss",
        type=float,
        default=None,
        metavar="NATS",
        help="gpt: validation loss "
        f"whose time is reported (default {plan.DEFAULTS['gpt']['target']:g})",
    )
    add("--seed", type=int, default=0, help="initial weights and batch order (default 0)")
    add(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="train each impl with seeds SEED.."
        "SEED+N-1 and score its time to target MLPerf's way (default 1)",
    )
    add(
        "--load",
        metavar="PATH",
        help="start from weights saved by --save (checked against "
        "the model); with --epochs 0 this only evaluates them",
    )
    add(
        "--save",
        metavar="PATH",
        help="save the trained weights as npz (with several impls "
        "or seeds, one file each: PATH-<impl>[-seed<s>].npz)",
    )
    add_results(parser)
    add(
        "--in-process",
        action="store_true",
        help="train every impl in this process (no crash isolation; for debugging)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    impls = names(args.impl, "--impl") or ["numpy"]
    if impls == ["all"]:
        impls = registry.names()
    for name in impls:
        registry.get_class(name)  # an unknown name fails here, listing the valid ones
    if args.seeds < 1:
        raise ValueError(f"--seeds must be 1 or more, got {args.seeds}")
    seeds = range(args.seed, args.seed + args.seeds)
    # an unwritable --save fails here, before any training
    saves = {
        (name, seed): check_save_path(
            plan.save_path(args.save, name, len(impls) > 1, seed if args.seeds > 1 else None)
        )
        for name in impls
        for seed in seeds
        if args.save
    }
    try:
        context = args.context or lm.LMConfig.context
        data = plan.load_data(args.model, plan.dataset_for(args), args.mnist, context)
    except ImportError as error:  # digits without scikit-learn: one line, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = plan.config_for(args, data)
    weights = plan.load_weights(args.load, config, data) if args.load else None
    print(table.describe(config, data, args.seeds), file=sys.stderr)
    warning = machine_state.busy_warning()
    if warning:
        print(warning, file=sys.stderr)
    writer = store.open_run(args.results)
    how = runs.How(args.in_process, args.mnist, args.load, saves)
    configs = [replace(config, seed=seed) for seed in seeds]
    with live.View(impls, stream=sys.stderr) as view:
        for name in impls:
            rows = runs.train_impl(name, configs, data, weights, how, view)
            for row in rows:
                writer.append(row)
            view.done(name, next((r["status"] for r in rows if r["status"] != "ok"), "ok"))
    return runs.verdict(writer, config, args.seeds)
