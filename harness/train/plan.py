"""What a `train` command line asks for: the model, its data, its config, its weights, its files.

The parent (harness/commands/train.py) and each child (harness/train/worker.py) build the same
run from the same words: the parent from the options, a child from the spec the parent sends
(`spec` here, `from_spec` there), so both load the data and the weights the same way.
Defaults differ by model: each is the one its README section measured.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from harness.train import corpus, datasets, lm, loop, nets
from harness.train.weights import load_params

# Widths by dataset when --layers is not given: hidden layers between features and classes.
DEFAULT_HIDDEN = {"digits": "32", "mnist": "128,64", "synthetic": "128,64"}
# Per model, what an option left out means (the GPT's are LMConfig's own).
DEFAULTS = {
    "mlp": {"opt": "sgd", "lr": None, "epochs": 20, "batch": 32, "target": 0.95},
    "cnn": {"opt": "adam", "lr": 0.01, "epochs": 15, "batch": 32, "target": 0.98},
    "gpt": {"opt": "adam", "lr": 3e-3, "batch": 8, "target": 2.5},
}
MODELS = tuple(DEFAULTS)
# The GPT's sizes, each an option (--eval-every ...) whose default is LMConfig's.
GPT_SIZES = {
    "eval_every": "steps per evaluation, an epoch of the loop",
    "context": "T, characters per sequence",
    "dim": "D, the model's width",
    "blocks": "L, transformer blocks",
    "heads": "G, attention heads",
    "val_batches": "validation batches of B sequences",
    "sample_chars": "characters of the generated sample",
}
# The options of one model or two: any other model refuses them rather than ignore them.
ONLY = {
    "hidden": ("mlp",),
    "layers": ("mlp",),
    "channels": ("cnn",),
    "image": ("cnn",),
    "target_acc": ("mlp", "cnn"),
    "steps": ("gpt",),
    "target_loss": ("gpt",),
    **dict.fromkeys(GPT_SIZES, ("gpt",)),
}


def widths(text: str, option: str, example: str, seps: str = "-") -> tuple:
    """ "784-128-10" -> (784, 128, 10), split at any of `seps`; an error names the option."""
    try:
        return tuple(int(w) for w in re.split(f"[{re.escape(seps)}]", text) if w)
    except ValueError:
        raise ValueError(
            f"{option} must be widths joined by '{seps[-1]}', e.g. {example}, got {text!r}"
        ) from None


def layers_for(args, data) -> tuple:
    """--layers as given, else the dataset's features, --hidden (or its default), classes."""
    if args.layers:
        return widths(args.layers, "--layers", "784-128-64-10")
    hidden = args.hidden if args.hidden is not None else DEFAULT_HIDDEN[data.name]
    return (data.features, *widths(hidden, "--hidden", "128,64", "-,"), data.classes)


def dataset_for(args) -> str:
    """--mnist DIR means MNIST; --dataset says otherwise only by mistake. The GPT reads the
    shipped corpus, never a dataset."""
    if args.model == "gpt":
        if args.dataset or args.mnist:
            raise ValueError("--model gpt trains on the shipped corpus: drop --dataset and --mnist")
        return corpus.CORPUS.stem
    if args.mnist and args.dataset not in (None, "mnist"):
        raise ValueError(
            f"--mnist {args.mnist} reads MNIST, but --dataset says {args.dataset}: drop one of them"
        )
    return "mnist" if args.mnist else args.dataset or "digits"


def load_data(model: str, dataset: str, mnist_dir=None, context: int = 1):
    """The Dataset a classifier trains on, or the GPT's Corpus."""
    if model == "gpt":
        return corpus.load(context=context)
    return datasets.load(dataset, mnist_dir)


def _chosen(args, name: str, model: str):
    value = getattr(args, name, None)
    return DEFAULTS[model][name] if value is None else value


def config_for(args, data):
    """The loop.Config (mlp, cnn) or lm.LMConfig (gpt) of the options, defaults by model."""
    model = args.model
    wrong = [o for o, of in ONLY.items() if model not in of and getattr(args, o) is not None]
    if wrong:
        given = ", ".join(f"--{o.replace('_', '-')} (for {' and '.join(ONLY[o])})" for o in wrong)
        raise ValueError(f"--model {model} does not take {given}")
    opt = _chosen(args, "opt", model)
    # A model's own rate goes with its own optimizer; another optimizer gets HYPER's (None).
    rate = DEFAULTS[model]["lr"] if opt == DEFAULTS[model]["opt"] else None
    common = {
        "opt": opt,
        "lr": rate if args.lr is None else args.lr,
        "batch": _chosen(args, "batch", model),
        "seed": args.seed,
    }
    if model == "gpt":
        if args.epochs is not None and args.steps is not None:
            raise ValueError(
                "--model gpt: give --steps or --epochs (evaluation intervals), not both"
            )
        sizes = {k: getattr(args, k) for k in GPT_SIZES if getattr(args, k) is not None}
        config = lm.LMConfig(
            **common, **sizes, target_loss=args.target_loss or DEFAULTS["gpt"]["target"]
        )
        steps = args.steps if args.epochs is None else args.epochs * config.eval_every
        return dataclasses.replace(config, steps=config.steps if steps is None else steps)
    config = loop.Config(
        **common,
        layers=layers_for(args, data) if model == "mlp" else (),
        epochs=_chosen(args, "epochs", model),
        target_acc=args.target_acc or DEFAULTS[model]["target"],
        model=model,
        channels=widths(args.channels, "--channels", "1-16-32")
        if args.channels
        else nets.CNN_CHANNELS,
        image=args.image,
    )
    loop.check_fits(config, data)
    return config


def spec(config, data_name: str, mnist_dir, load) -> dict:
    """What a child needs to build the same run: it loads the data and the weights itself."""
    return {
        "model": config.model,
        "dataset": data_name,
        "mnist": mnist_dir,
        "load": load,
        "config": dataclasses.asdict(config),
    }


def from_spec(spec: dict):
    """A child's (data, config) from its parent's spec."""
    fields = spec["config"]
    if spec["model"] == "gpt":
        config = lm.LMConfig(**fields)
        return load_data("gpt", spec["dataset"], context=config.context), config
    config = loop.Config(
        **{**fields, "layers": tuple(fields["layers"]), "channels": tuple(fields["channels"])}
    )
    return load_data(config.model, spec["dataset"], spec["mnist"]), config


def load_weights(path, config, data) -> dict:
    """The weights file at `path`, checked against the model it must fit (weights.py)."""
    if config.model == "gpt":
        shapes, what = lm.param_shapes(config, data.vocab), f"the GPT {config.label} V{data.vocab}"
    else:
        net = nets.for_config(config, data)
        shapes, what = net.shapes(), f"the {config.model.upper()} {net.label}"
        if config.model == "cnn":
            what += f" on {net.image}x{net.image} images"
    return load_params(path, shapes, what)


def save_path(base: str, impl: str, several: bool, seed: int | None = None) -> Path:
    """--save's file for one impl (and one seed of several): PATH-<impl>[-seed<s>].npz."""
    path = Path(base)
    if not several and seed is None:
        return path
    stem = path.name[:-4] if path.name.endswith(".npz") else path.name
    tags = ([impl] if several else []) + ([f"seed{seed}"] if seed is not None else [])
    return path.with_name(f"{stem}-{'-'.join(tags)}.npz")
