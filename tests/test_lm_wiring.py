"""The language-model tasks wired everywhere a task runs: the registry, `optbench train` and
`optbench.train`, `optbench sweep`, the recipes, the figure, and one-line refusals. All on the
shipped fixture text (tests/fixtures/) through --data-dir, with a few steps, so they are fast."""

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import optbench
from optbench.cli import main
from optbench.runners.recipes import split_parameters
from optbench.runners.training import TrainSpec, _optimizer
from optbench.tasks import TASKS, TaskKind, get_task
from optbench.tasks.language_model import LanguageModelOptions, LanguageModelProblem, load_text
from optbench.tasks.problem import Target
from optbench.text import bigram_cross_entropy, read_corpus, unigram_entropy

FIXTURE = str(Path(__file__).parent / "fixtures" / "macbeth-act1.txt")
TINY = ["--task", "shakespeare-tiny", "--data-dir", FIXTURE, "--device", "cpu"]


def cli(*args):
    return CliRunner().invoke(main, list(args))


def test_both_tasks_are_registered_with_their_target_and_commands():
    for name in ("shakespeare", "shakespeare-tiny"):
        task = get_task(name)
        assert TASKS[name] is task and task.kind is TaskKind.LANGUAGE_MODEL
        assert task.target == Target("val_loss", 1.90, "min")
        assert task.commands == ("train", "sweep") and task.model == "transformer"
    assert get_task("shakespeare").budget.steps == 2000 and get_task("shakespeare").budget.batch_size == 12
    listing = CliRunner().invoke(main, ["list"], env={"COLUMNS": "250"}).output
    rows = [line for line in listing.splitlines() if "shakespeare" in line and "language-model" in line]
    assert len(rows) == 2 and all("train, sweep" in row for row in rows)  # (the bench table lists one too)


def test_adamw_defaults_are_nanogpts():
    spec = TrainSpec(optimizer="adamw", task="shakespeare-tiny", model="transformer")
    hparams = spec.resolved()["optimizer_hparams"]
    assert hparams["lr"] == 1e-3 and tuple(hparams["betas"]) == (0.9, 0.99) and hparams["weight_decay"] == 0.1
    assert spec.resolved()["recipe"]["recipe"] == "no-decay"


def _hand_written_adamw_losses(steps, batch_size, seed=0):
    """nanoGPT's loop written out with torch.optim.AdamW: decay on weight matrices only, its per-step
    warm-up (10 steps for the tiny task) and cosine decay to lr / 10 at the last step, batches in the
    order the training loop draws them (a seeded permutation of the windows per epoch)."""
    problem = LanguageModelProblem(LanguageModelOptions.tiny(data_dir=FIXTURE), seed)
    model = problem.model
    tables = {id(model.wte.weight), id(model.wpe.weight)}
    decay = [p for p in model.parameters() if p.ndim >= 2 and id(p) not in tables]
    rest = [p for p in model.parameters() if p.ndim < 2 or id(p) in tables]
    optimizer = torch.optim.AdamW(
        [{"params": decay}, {"params": rest, "weight_decay": 0.0}],
        lr=1e-3,
        betas=(0.9, 0.99),
        weight_decay=0.1,
    )
    generator = torch.Generator().manual_seed(seed)
    per_epoch = problem.n_train // batch_size
    losses, lrs = [], []
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(problem.n_train, generator=generator)
        i = step % per_epoch
        warmup = 10
        if step < warmup:
            lr = 1e-3 * (step + 1) / warmup
        else:
            lr = 1e-4 + (1e-3 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = problem.batch(order[i * batch_size : (i + 1) * batch_size])
        optimizer.zero_grad()
        loss = problem.loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        lrs.append(lr)
    return losses, lrs, problem


def test_python_train_equals_a_hand_written_torch_loop():
    # 14 steps: 10 of warm-up, 4 of cosine decay, across the fixture's 10-step epochs
    result = optbench.train("adamw", task="shakespeare-tiny", data_dir=FIXTURE, max_steps=14, device="cpu")
    expected, lrs, problem = _hand_written_adamw_losses(14, 32)
    assert problem.n_train // 32 == 10
    assert result.steps["lr"].tolist() == pytest.approx(lrs, rel=1e-12)
    assert result.steps["loss"].tolist() == pytest.approx(expected, rel=1e-5)
    summary = result.summary.iloc[0]
    assert summary["steps"] == 14 and summary["tokens_per_s"] == pytest.approx(summary["samples_per_s"] * 16)
    final = result.evaluations.iloc[-1]
    assert final["step"] == 14 and final["val_bpc"] == pytest.approx(final["val_loss"] / math.log(2))
    # the final weights score what the last evaluation recorded
    problem.model.load_state_dict(result.runs["adamw"].state_dict)
    assert problem.evaluate(problem.model)["val_loss"] == pytest.approx(final["val_loss"], rel=1e-6)


def test_cli_train_writes_tables_meta_and_the_figure_with_the_bigram_line(tmp_path):
    out = tmp_path / "run"
    result = cli(
        "train", *TINY, "--optimizer", "adamw", "--max-steps", "8", "--out", str(out), "--format", "png"
    )
    assert result.exit_code == 0, result.output
    assert "tokens" in result.output and "nats per character" in result.output
    summary = pd.read_parquet(out / "summary.parquet")
    assert summary["steps"].tolist() == [8] and summary["tokens_per_s"].iloc[0] > 0
    assert 0 < summary["final_val_loss"].iloc[0] < 10
    data = json.loads((out / "meta.json").read_text())["spec"]["data"]
    text = Path(FIXTURE).read_text(encoding="utf-8")
    assert data["corpus_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert data["characters"] == len(text) and data["train_characters"] + data["val_characters"] == len(text)
    corpus = load_text(FIXTURE)
    vocab = len(corpus.vocabulary)
    assert data["vocab_size"] == vocab
    assert data["bigram_val_loss"] == pytest.approx(bigram_cross_entropy(corpus.train, corpus.val, vocab))
    assert data["unigram_entropy"] == pytest.approx(
        unigram_entropy(torch.cat([corpus.train, corpus.val]), vocab)
    )
    model = LanguageModelProblem(LanguageModelOptions.tiny(data_dir=FIXTURE), 0).model
    assert data["parameters"] == sum(p.numel() for p in model.parameters())
    assert (out / "training.png").exists()

    figure = optbench.TrainingResult.load(out).plot()["training"]
    ax = figure.axes[0]
    flat = {line.get_label(): line for line in ax.get_lines() if len(set(line.get_ydata())) == 1}
    bigram = next(line for label, line in flat.items() if label.startswith("bigram baseline"))
    assert bigram.get_ydata()[0] == pytest.approx(data["bigram_val_loss"]) and bigram.get_linestyle() == "--"
    assert ax.get_xlabel() == "step" and "nats per character" in ax.get_ylabel()
    validation = next(line for line in ax.get_lines() if line.get_label().startswith("adamw"))
    assert list(validation.get_xdata()) == pd.read_parquet(out / "evaluations.parquet")["step"].tolist()


def test_model_sizes_reach_the_model_and_the_record():
    result = optbench.train(
        "adamw",
        task="shakespeare-tiny",
        data_dir=FIXTURE,
        max_steps=2,
        device="cpu",
        context=8,
        n_embd=16,
        n_head=4,
    )
    data = result.meta["data"]
    assert (data["context"], data["n_embd"], data["n_head"], data["n_layer"]) == (8, 16, 4, 2)
    assert result.meta["runs"][0]["context"] == 8 and result.summary["tokens_per_s"].iloc[0] > 0


def test_muon_and_no_decay_recipes_on_the_transformer():
    task = get_task("shakespeare-tiny")
    model = LanguageModelProblem(LanguageModelOptions.tiny(data_dir=FIXTURE), 0).model
    matrices, kernels, rest = split_parameters(model)
    hidden = {id(p) for block in model.blocks for p in block.parameters() if p.ndim == 2}
    assert {id(p) for p in matrices} == hidden and not kernels
    assert id(model.wte.weight) in {id(p) for p in rest}  # the embedding (tied head) stays with AdamW

    muon = _optimizer(TrainSpec(optimizer="muon", task=task.name, model="transformer"), task, model)
    muon_part, adamw_part = muon.optimizers
    assert {id(p) for g in muon_part.param_groups for p in g["params"]} == hidden
    assert adamw_part.param_groups[0]["betas"] == (0.9, 0.99) and adamw_part.param_groups[0]["lr"] == 1e-3

    adamw = _optimizer(TrainSpec(optimizer="adamw", task=task.name, model="transformer"), task, model)
    decayed, undecayed = adamw.param_groups
    assert decayed["weight_decay"] == 0.1 and undecayed["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == hidden  # the head is the (undecayed) embedding table
    assert all(
        p.ndim < 2 or id(p) in (id(model.wte.weight), id(model.wpe.weight)) for p in undecayed["params"]
    )

    result = optbench.train("muon", task="shakespeare-tiny", data_dir=FIXTURE, max_steps=3, device="cpu")
    assert result.meta["runs"][0]["recipe"]["recipe"] == "muon"
    assert not result.summary["diverged"].iloc[0] and result.steps["loss"].notna().all()


def test_sweep_runs_batch_sizes_on_the_fixture(tmp_path):
    out = tmp_path / "sweep"
    result = cli(
        "sweep",
        *TINY,
        "--optimizer",
        "adamw",
        "--batch-size",
        "8,32",
        "--steps",
        "6",
        "--out",
        str(out),
        "--format",
        "png",
    )
    assert result.exit_code == 0, result.output
    assert "target loss <= 1.9" in result.output
    cells = pd.read_parquet(out / "sweep.parquet")
    assert sorted(cells["batch_size"].unique()) == [8, 32]
    assert cells.groupby("batch_size")["step"].max().tolist() == [6, 6]
    assert cells["eval_loss"].dropna().between(0, 10).all() and cells["eval_loss"].notna().any()


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda d: (d / "empty.txt").write_text(""), [], "empty"),
        (lambda d: (d / "binary.txt").write_bytes(bytes(range(256)) * 4), [], "UTF-8"),
        (lambda d: (d / "folder").mkdir(), [], "no .txt"),
        (None, ["--context", "700"], "context 700 is too long for the text"),
    ],
)
def test_bad_text_inputs_are_one_line_with_exit_2(tmp_path, make, args, message):
    data = FIXTURE
    if make is not None:
        make(tmp_path)
        data = str(next(p for p in tmp_path.iterdir()))
    out = tmp_path / "out"
    result = cli(
        "train",
        "--task",
        "shakespeare-tiny",
        "--data-dir",
        data,
        *args,
        "--max-steps",
        "2",
        "--out",
        str(out),
    )
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    assert not out.exists()


@pytest.mark.parametrize("option", ["--context", "--n-layer", "--n-head", "--n-embd"])
def test_language_model_sizes_are_refused_on_other_tasks(tmp_path, option):
    out = tmp_path / "out"
    result = cli("train", "--task", "digits", option, "8", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert f"{option} applies to language-model tasks only" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
    result = cli("train", "--task", "linreg", option, "8", "--out", str(out))
    assert result.exit_code == 2 and f"{option} does not apply to task 'linreg'" in result.output


def test_a_step_budget_is_the_progress_total():
    from optbench.runners.training import TrainSpec
    from optbench.runners.training_loop import epoch_progress

    spec = TrainSpec(optimizer="adamw", task="shakespeare-tiny", epochs=3, max_steps=200)
    assert epoch_progress(spec, 1, 10, 1000).total == 200
    assert epoch_progress(TrainSpec(optimizer="sgd", epochs=3), 1, 10, 50).total == 150


def test_a_run_with_out_reads_and_encodes_the_corpus_once(tmp_path, monkeypatch):
    """Checking the run, recording the corpus in meta.json and training share one `Text`."""
    from optbench.tasks import language_model

    data = tmp_path / "act1.txt"  # a path of its own: nothing cached for it yet
    data.write_text(Path(FIXTURE).read_text())
    reads = []
    monkeypatch.setattr(language_model, "read_corpus", lambda d: reads.append(d) or read_corpus(d))
    result = optbench.train(
        "adamw", "shakespeare-tiny", data_dir=str(data), max_steps=2, device="cpu", out=tmp_path / "out"
    )
    assert reads == [str(data)]
    assert (
        json.loads((tmp_path / "out" / "meta.json").read_text())["spec"]["data"]["corpus_sha256"]
        == (result.meta["data"]["corpus_sha256"])
    )
