"""The character-level text `train --model gpt` learns: the corpus, its vocabulary, batches.

The text ships with the project: harness/train/corpus/alice29.txt, Lewis Carroll's "Alice's
Adventures in Wonderland" (1865, public domain) as the Canterbury corpus has it (README,
"Training end to end", says where it came from). Its vocabulary is its distinct characters in
code-point order, ids 0..V-1. The first TRAIN_FRACTION of the text trains and the rest
validates: a contiguous split, so no validation window overlaps a training one. A batch is B
windows of T + 1 characters at seeded offsets: the tokens are the first T of each, the labels
the next T (each token's successor), the positions 0..T-1 of every sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).with_name("corpus") / "alice29.txt"
TRAIN_FRACTION = 0.9


class CorpusError(ValueError):
    """A text that cannot be trained on, said with the file and what was due."""


@dataclass(frozen=True)
class Corpus:
    name: str
    chars: str  # the vocabulary: chars[id] is the character of token id
    train_R: np.ndarray  # int64 token ids of the training text
    val_R: np.ndarray  # of the validation text

    @property
    def vocab(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        ids = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - ids.keys())
        if unknown:
            raise CorpusError(
                f"{text[:40]!r}: characters {unknown} are not in the vocabulary of {self.name}"
            )
        return np.array([ids[c] for c in text], dtype=np.int64)

    def decode(self, ids_R) -> str:
        return "".join(self.chars[int(i)] for i in ids_R)

    def describe(self) -> str:
        return (
            f"{self.name}: {len(self.train_R)} train and {len(self.val_R)} validation "
            f"characters, vocabulary {self.vocab}"
        )


def load(path: Path | str = CORPUS, context: int = 1) -> Corpus:
    """The text at `path` as a Corpus; each split must hold a window of `context` + 1."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CorpusError(f"{path}: cannot read it as UTF-8 text: {error}") from error
    chars = "".join(sorted(set(text)))
    ids_R = Corpus(path.stem, chars, np.zeros(0), np.zeros(0)).encode(text)
    split = int(len(ids_R) * TRAIN_FRACTION)
    corpus = Corpus(path.stem, chars, ids_R[:split], ids_R[split:])
    shortest = min(len(corpus.train_R), len(corpus.val_R))
    if shortest < context + 1:
        raise CorpusError(
            f"{path}: {len(ids_R)} characters leave a split of {shortest}, too short for one "
            f"window of {context} + 1 (the context and the next character)"
        )
    return corpus


def windows(ids_R: np.ndarray, offsets_B, context: int) -> tuple:
    """(tokens_R, labels_R, positions_R) of the windows starting at offsets_B, B*T each."""
    offsets_B = np.asarray(offsets_B, dtype=np.int64)
    chars_BT = ids_R[offsets_B[:, None] + np.arange(context + 1)]  # T + 1 columns
    positions_R = np.tile(np.arange(context, dtype=np.int64), len(offsets_B))
    return chars_BT[:, :-1].reshape(-1), chars_BT[:, 1:].reshape(-1), positions_R


def batch(ids_R: np.ndarray, batch: int, context: int, seed: int, step: int) -> tuple:
    """Training batch `step`: B windows at offsets seeded by (seed, step), so every impl
    trains on the same characters in the same order."""
    starts = len(ids_R) - context  # every offset whose window of T + 1 fits
    offsets_B = np.random.default_rng([seed, step]).integers(0, starts, batch)
    return windows(ids_R, offsets_B, context)


def fixed_batches(ids_R: np.ndarray, batch: int, context: int, count: int) -> list:
    """`count` batches of B windows spread evenly over the text: the validation set (the same
    for every step, seed and impl)."""
    starts = len(ids_R) - context
    offsets = np.linspace(0, starts - 1, batch * count).astype(np.int64)
    return [
        windows(ids_R, offsets[at : at + batch], context) for at in range(0, len(offsets), batch)
    ]
