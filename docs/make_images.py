"""Regenerate every image that the README and the docs show, and every number they quote, from the
command that makes it.

    python docs/make_images.py                 # every image and number (several minutes on 2 cores)
    python docs/make_images.py sweep_lr ...    # only these images or quoted numbers (and their commands)
    python docs/make_images.py --pages         # writes the stored numbers into the pages; runs nothing
    python docs/make_images.py --check         # runs nothing: see below

Each recipe is an `optbench` command, run as a user would type it into a fresh folder, the figures it
writes that the docs show, and the numbers the docs quote from its results. Running the commands (rather
than copying figures and numbers by hand) is what keeps a picture or a number from going stale. A recipe
with `saved` redraws a results folder committed under docs/ (`optbench plot`), for a run too long to
repeat here (the language model's, made by docs/lm_figure.py); its tables count in its fingerprint.

A quoted number stands in a page between markers, `<!-- gen:KEY -->13.3<!-- /gen -->`. Regenerating a
recipe stores its numbers in `docs/images/quoted.json`, each with a fingerprint of the command and of the
function that reads it from the command's results, and writes them into every page that quotes them.

`--check` reads README.md and docs/*.md and fails (exit status 1, one line per problem) when an image
is shown that no recipe makes, a recipe makes an image that nothing shows, an image file is missing,
one page shows an image twice, a page quotes a number that no recipe makes or one that differs from the
stored value, a recipe's number is quoted nowhere or was read by an older command or reader, or an image
is stale: `docs/images/made_with.json` records, per image, a fingerprint of its recipe and of the drawing
code it was made with (the recipe's modules of optbench/plots, with style.py, coinciding.py and
optbench/theory.py), and a change to either since makes the image stale until it is regenerated. It
recomputes nothing, so CI runs it in a second; a change of the numbers themselves is the golden tables'
check.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MANIFEST = IMAGES / "made_with.json"
PLOTS = ROOT / "optbench" / "plots"
SHARED_DRAWING_CODE = [PLOTS / "style.py", PLOTS / "coinciding.py", ROOT / "optbench" / "theory.py"]
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\((?:docs/)?images/([^)\s]+)\)")
QUOTED = IMAGES / "quoted.json"
QUOTE = re.compile(r"<!-- gen:([\w.-]+) -->(.*?)<!-- /gen -->", re.S)


@dataclass(frozen=True)
class Recipe:
    command: str  # what follows `optbench`, as typed; `--out DIR --format png` are added
    figures: dict[str, str]  # figure file in the command's --out folder -> image name in docs/images
    drawn_by: tuple[str, ...]  # the modules of optbench/plots that draw them (style.py always counts)
    # the numbers the pages quote: their keys, and the function that reads them (as the pages print
    # them) from the command's --out folder
    quotes: tuple[str, ...] = ()
    read_quotes: Callable[[Path], dict[str, str]] | None = None
    saved: str | None = None  # a results folder under ROOT that `plot` redraws instead of running a command


def _figure(value: float) -> str:
    """A number as the tables print it: 3 significant digits, whole numbers whole."""
    return f"{value:.0f}" if float(value).is_integer() and abs(value) < 1e6 else f"{value:.3g}"


def _read(folder: Path, table: str):
    import pandas as pd  # only the recipes' readers need it

    return pd.read_parquet(folder / f"{table}.parquet")


def elliptic(folder: Path) -> dict[str, str]:
    """docs/surfaces.md: SGD's and RMSprop's path lengths at their default lr, and RMSprop's steps to
    tolerance."""
    metrics = _read(folder, "metrics").set_index("optimizer")
    return {
        "surfaces.sgd.path": f"{metrics.loc['sgd', 'path_length']:.0f}",
        "surfaces.rmsprop.path": f"{metrics.loc['rmsprop', 'path_length']:.0f}",
        "surfaces.rmsprop.steps": _figure(metrics.loc["rmsprop", "steps_to_tolerance"]),
    }


def tuned_elliptic(folder: Path) -> dict[str, str]:
    """docs/comparing-fairly.md: the winning lr per optimizer, the lr range that converged from every
    start, and the tuned RMSprop run's steps to tolerance and path length."""
    tuned = _read(folder, "tuned").set_index("optimizer")
    metrics = _read(folder, "metrics").set_index("optimizer")
    values = {f"fair.{name}.lr": _figure(tuned.loc[name, "lr"]) for name in tuned.index}
    for name in ("sgd", "momentum", "rmsprop"):
        low, high = tuned.loc[name, ["lr_converging_low", "lr_converging_high"]]
        values[f"fair.{name}.converging"] = f"{_figure(low)} to {_figure(high)}"
    values["fair.momentum.reached"] = (
        f"{tuned.loc['momentum', 'reached']} of {tuned.loc['momentum', 'starts']}"
    )
    values["fair.adam.reached"] = f"{tuned.loc['adam', 'reached']} of {tuned.loc['adam', 'starts']}"
    values["fair.rmsprop.steps"] = _figure(metrics.loc["rmsprop", "steps_to_tolerance"])
    values["fair.rmsprop.path"] = f"{metrics.loc['rmsprop', 'path_length']:.0f}"
    return values


def tuned_sgd_momentum(folder: Path) -> dict[str, str]:
    """docs/comparing-fairly.md: SGD's tuned (lr, momentum) next to the heavy-ball optimum."""
    tuned = _read(folder, "tuned").set_index("optimizer")
    return {
        "fair.sgd2.lr": _figure(tuned.loc["sgd", "lr"]),
        "fair.sgd2.momentum": _figure(tuned.loc["sgd", "momentum"]),
    }


def _steps(value: float) -> str:
    """Steps to target (interpolated between evaluations) as the summary table prints them: whole."""
    return f"{value:.0f}"


def _critical(critical, rule: str, prefix: str) -> dict[str, str]:
    row = critical.set_index("lr_scale").loc[rule]
    high = "∞" if row["critical_high"] == float("inf") else _figure(row["critical_high"])
    return {
        f"{prefix}.b_crit": _figure(row["critical_batch_size"]),
        f"{prefix}.b_crit_interval": f"{_figure(row['critical_low'])}-{high}",
    }


def readme_sweep(folder: Path) -> dict[str, str]:
    """README.md and docs/sweeps.md: the README sweep's critical batch size with its interval."""
    return _critical(_read(folder, "critical"), "best rule", "readme.sweep")


def digits_sweep(folder: Path) -> dict[str, str]:
    """docs/sweeps.md: the digits sweep's steps to target (best rule per batch size), B_crit fitted to
    the best rule with its interval (as the summary line and the figure), the noise scale, where the
    linear rule misses the target, and the final accuracies of the three scaling rules."""
    summary, critical = _read(folder, "summary"), _read(folder, "critical")
    chosen = summary[summary["lr_chosen"]]
    best = chosen.groupby("batch_size")["steps_to_target"].min()
    sizes = list(best.index)
    plateau = best[best.index >= 64]
    rules = chosen[chosen["lr_scale"] != "tuned"]
    by_rule = rules[rules["batch_size"] >= 64].groupby("lr_scale")["steps_to_target"]
    linear = chosen[chosen["lr_scale"] == "linear"].set_index("batch_size")
    missed = [str(b) for b, steps in linear["steps_to_target"].items() if steps != steps]
    accuracy = rules[rules["batch_size"] <= 256]["final_accuracy"]
    noise = critical.iloc[0]
    return {
        **_critical(critical, "best rule", "sweep"),
        "sweep.small_batches": " -> ".join(_steps(best[b]) for b in sizes[:3]),
        "sweep.per_doubling": " and ".join(
            f"x{best[b] / best[a]:.2f}" for a, b in zip(sizes[:2], sizes[1:3], strict=True)
        ),
        "sweep.plateau": f"{_steps(plateau.min())}-{_steps(plateau.max())}",
        "sweep.none_plateau": f"{_steps(by_rule.min()['none'])}-{_steps(by_rule.max()['none'])}",
        "sweep.linear_missed": " and ".join(missed) if missed else "no batch size",
        "sweep.accuracy_to_256": f"{accuracy.min():.0%}-{accuracy.max():.0%}",
        "sweep.noise_start": _figure(noise["noise_scale_start"]),
        "sweep.noise_start_interval": f"{_figure(noise['noise_scale_start_low'])}-"
        f"{_figure(noise['noise_scale_start_high'])}",
        "sweep.noise_end": _figure(noise["noise_scale_end"]),
    }


def digits_sgd(folder: Path) -> dict[str, str]:
    """README.md and docs/training.md: LeNet's validation accuracy on digits after 10 epochs of SGD."""
    summary = _read(folder, "summary")
    return {"train.sgd_accuracy": f"{100 * summary['final_val_accuracy'].iloc[0]:.1f}"}


RECIPES = [
    Recipe(
        "compare sgd adam rmsprop --surface elliptic",
        {"trajectories.png": "surfaces_elliptic_trajectories.png", "loss.png": "surfaces_elliptic_loss.png"},
        drawn_by=("surfaces",),
        quotes=("surfaces.sgd.path", "surfaces.rmsprop.path", "surfaces.rmsprop.steps"),
        read_quotes=elliptic,
    ),
    Recipe(
        "grid sgd --surface elliptic --lr 1e-4:1:64 --momentum 0:0.99:64",
        {"grid.png": "fair_grid_stability.png"},
        drawn_by=("surfaces", "grid_map"),
    ),
    Recipe(
        "compare sgd momentum adam rmsprop --surface elliptic --tune",
        {
            "trajectories.png": "fair_elliptic_tuned_trajectories.png",
            "loss.png": "fair_elliptic_tuned_loss.png",
            "sensitivity.png": "fair_sensitivity.png",
        },
        drawn_by=("surfaces", "fair"),
        quotes=(
            *(f"fair.{name}.lr" for name in ("sgd", "momentum", "adam", "rmsprop")),
            *(f"fair.{name}.converging" for name in ("sgd", "momentum", "rmsprop")),
            "fair.momentum.reached",
            "fair.adam.reached",
            "fair.rmsprop.steps",
            "fair.rmsprop.path",
        ),
        read_quotes=tuned_elliptic,
    ),
    Recipe(
        "compare sgd --surface elliptic --tune --tune-over lr,momentum",
        {},
        drawn_by=(),
        quotes=("fair.sgd2.lr", "fair.sgd2.momentum"),
        read_quotes=tuned_sgd_momentum,
    ),
    Recipe(
        "compare sgd momentum:lr=0.003 adam --surface linreg --trials 4",
        {"suboptimality.png": "fair_linreg_suboptimality.png", "noise_floor.png": "fair_noise_floor.png"},
        drawn_by=("fair",),
    ),
    Recipe(
        "train --optimizer sgd --optimizer momentum --optimizer adam --optimizer rmsprop --epochs 10",
        {"training.png": "train_digits_lenet.png"},
        drawn_by=("training",),
    ),
    Recipe(
        "train --task digits --model lenet --optimizer sgd --epochs 10",
        {},
        drawn_by=(),
        quotes=("train.sgd_accuracy",),
        read_quotes=digits_sgd,
    ),
    Recipe("train --task scalar --trace", {"trace.png": "train_scalar_trace.png"}, drawn_by=("training",)),
    Recipe(
        "train --task linreg --optimizer sgd --optimizer momentum:lr=0.01 --optimizer adam:lr=0.05"
        " --optimizer sgd:lr=1.5",
        {"regression.png": "train_linreg.png"},
        drawn_by=("training",),
    ),
    Recipe(
        "sweep --batch-size 16,32,64,128 --lr-scale tuned",
        {},
        drawn_by=(),
        quotes=("readme.sweep.b_crit", "readme.sweep.b_crit_interval"),
        read_quotes=readme_sweep,
    ),
    Recipe(
        "sweep --batch-size 16,32,64,128,256,512,1024 --lr-scale linear,sqrt,none,tuned --optimizer momentum"
        " --base-lr 0.01 --steps 400 --target-accuracy 0.9 --jobs 2",
        {
            "sweep_steps_to_target.png": "sweep_steps_to_target.png",
            "sweep_final_accuracy.png": "sweep_final_accuracy.png",
            "sweep_loss_curves.png": "sweep_loss_curves.png",
            "sweep_lr.png": "sweep_lr.png",
        },
        drawn_by=("sweeps",),
        quotes=(
            "sweep.b_crit",
            "sweep.b_crit_interval",
            "sweep.small_batches",
            "sweep.per_doubling",
            "sweep.plateau",
            "sweep.none_plateau",
            "sweep.linear_missed",
            "sweep.accuracy_to_256",
            "sweep.noise_start",
            "sweep.noise_start_interval",
            "sweep.noise_end",
        ),
        read_quotes=digits_sweep,
    ),
]

# The language model's four optimizers, 3 seeds each: a run of hours under load, made once by
# `python docs/lm_figure.py run` into this folder and redrawn from it; its recipe counts from then on.
LANGUAGE_MODEL_RUN = "docs/runs/language-model"
if (ROOT / LANGUAGE_MODEL_RUN / "meta.json").exists():
    RECIPES.append(
        Recipe(
            f"plot {LANGUAGE_MODEL_RUN}",
            {"training.png": "language_model_optimizers.png"},
            drawn_by=("training",),
            saved=LANGUAGE_MODEL_RUN,
        )
    )


def drawing_code(recipe: Recipe) -> list[Path]:
    return [*SHARED_DRAWING_CODE, *(PLOTS / f"{module}.py" for module in recipe.drawn_by)]


def _digest(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part + b"\0")
    return digest.hexdigest()


def fingerprint(recipe: Recipe) -> str:
    """sha256 of the recipe's command and of the code that draws its figures: what an image depends on
    beyond the numbers (which the golden check guards). The code is read as its syntax tree, so a change
    of layout or comments (the formatter's) leaves the images current."""
    digest = hashlib.sha256(recipe.command.encode())
    for path in drawing_code(recipe):
        code = ast.dump(ast.parse(path.read_text(encoding="utf-8")))
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + code.encode())
    for path in saved_files(recipe):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def quotes_fingerprint(recipe: Recipe) -> str:
    """sha256 of the recipe's command and of the syntax tree of the function that reads its numbers."""
    reader = ast.dump(ast.parse(inspect.getsource(recipe.read_quotes))) if recipe.read_quotes else ""
    return _digest([recipe.command.encode(), reader.encode()])


def saved_files(recipe: Recipe) -> list[Path]:
    """The tables and meta.json of a recipe's saved results folder (none for a command)."""
    if recipe.saved is None:
        return []
    folder = ROOT / recipe.saved
    return sorted([*folder.glob("*.parquet"), *folder.glob("meta.json")])  # none before its run exists


def recorded() -> dict[str, str]:
    return json.loads(MANIFEST.read_text(encoding="utf-8")) if MANIFEST.exists() else {}


def stored_quotes() -> dict[str, dict[str, str]]:
    """Key -> {"value": the text pages quote, "made_with": its recipe's quotes_fingerprint}."""
    return json.loads(QUOTED.read_text(encoding="utf-8")) if QUOTED.exists() else {}


def shown_images() -> dict[Path, list[str]]:
    """Page -> the image names it shows, in order (repeats kept)."""
    return {page: IMAGE_LINK.findall(page.read_text(encoding="utf-8")) for page in PAGES}


def quoted_numbers() -> dict[Path, list[tuple[str, str]]]:
    """Page -> the (key, value as the page prints it) of its generated numbers, in order."""
    return {page: QUOTE.findall(page.read_text(encoding="utf-8")) for page in PAGES}


def check_quotes() -> list[str]:
    declared = {key: recipe for recipe in RECIPES for key in recipe.quotes}
    stored = stored_quotes()
    problems = []
    quoted = set()
    for page, numbers in quoted_numbers().items():
        name = page.relative_to(ROOT)
        for key, value in numbers:
            quoted.add(key)
            if key not in declared:
                problems.append(f"{name} quotes '{key}', which no recipe makes")
            elif key in stored and stored[key]["value"] != value:
                problems.append(
                    f"{name} quotes {key} as '{value}' where its command gave '{stored[key]['value']}': "
                    "run python docs/make_images.py --pages"
                )
    problems += [
        f"a recipe makes the number '{key}', which no page quotes" for key in sorted(set(declared) - quoted)
    ]
    for key, recipe in declared.items():
        if key not in stored:
            problems.append(f"the number '{key}' was never generated: run python docs/make_images.py {key}")
        elif stored[key]["made_with"] != quotes_fingerprint(recipe):
            problems.append(
                f"the number '{key}' is stale (its command or reader changed since it was made): "
                f"run python docs/make_images.py {key}"
            )
    return problems


def check() -> list[str]:
    made = {image for recipe in RECIPES for image in recipe.figures.values()}
    shown = shown_images()
    problems = []
    for page, images in shown.items():
        name = page.relative_to(ROOT)
        repeated = {image for image in images if images.count(image) > 1}
        problems += [f"{name} shows {image} twice" for image in sorted(repeated)]
        problems += [f"{name} shows {image}, which no recipe makes" for image in sorted(set(images) - made)]
    everywhere = {image for images in shown.values() for image in images}
    problems += [f"a recipe makes {image}, which no page shows" for image in sorted(made - everywhere)]
    problems += [f"docs/images/{image} is missing" for image in sorted(made) if not (IMAGES / image).exists()]
    made_with = recorded()
    for recipe in RECIPES:
        current = fingerprint(recipe)
        problems += [
            f"docs/images/{image} is stale (its recipe or the drawing code changed since it was made): "
            f"run python docs/make_images.py {image}"
            for image in recipe.figures.values()
            if made_with.get(image) != current
        ]
    return problems + check_quotes()


def write_pages() -> None:
    """Every page's generated numbers replaced by the stored ones (a key not stored is left as it is)."""
    stored = stored_quotes()

    def current(match: re.Match) -> str:
        key = match.group(1)
        value = stored[key]["value"] if key in stored else match.group(2)
        return f"<!-- gen:{key} -->{value}<!-- /gen -->"

    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        updated = QUOTE.sub(current, text)
        if updated != text:
            page.write_text(updated, encoding="utf-8")
            print(f"  numbers -> {page.relative_to(ROOT)}", file=sys.stderr)


def regenerate(wanted: set[str]) -> None:
    known = {name for recipe in RECIPES for name in (*recipe.figures.values(), *recipe.quotes)}
    unknown = wanted - known
    if unknown:
        raise SystemExit(f"no recipe makes {', '.join(sorted(unknown))}")
    for recipe in RECIPES:
        if wanted and not wanted & {*recipe.figures.values(), *recipe.quotes}:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "out"
            command = [sys.executable, "-m", "optbench", *shlex.split(recipe.command), "--out", str(out)]
            if recipe.saved is not None:  # redraw a copy: the committed folder keeps only its tables
                shutil.copytree(
                    ROOT / recipe.saved, out, ignore=shutil.ignore_patterns("cells", "*.png", "*.pdf")
                )
                command = [sys.executable, "-m", "optbench", "plot", str(out)]
            print("+ optbench", recipe.command, file=sys.stderr)
            # This checkout's optbench, whatever else is installed: the images document this code.
            path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            env = {**os.environ, "PYTHONPATH": path}
            subprocess.run(
                [*command, "--format", "png"], check=True, cwd=scratch, env=env, stdout=subprocess.DEVNULL
            )
            collect(recipe, out)


def collect(recipe: Recipe, out: Path) -> None:
    """Take a recipe's figures and numbers from `out`, the --out folder its command wrote: copy the
    figures into docs/images, store the numbers, and write them into the pages."""
    made_with = recorded()
    for name, image in recipe.figures.items():
        shutil.copyfile(out / name, IMAGES / image)
        made_with[image] = fingerprint(recipe)
        print(f"  {name} -> docs/images/{image}", file=sys.stderr)
    MANIFEST.write_text(json.dumps(made_with, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if recipe.read_quotes is None:
        return
    values = recipe.read_quotes(out)
    if set(values) != set(recipe.quotes):
        raise SystemExit(f"{recipe.command}: read {sorted(values)}, declared {sorted(recipe.quotes)}")
    stored = stored_quotes()
    made = quotes_fingerprint(recipe)
    stored.update({key: {"value": value, "made_with": made} for key, value in values.items()})
    QUOTED.write_text(
        json.dumps(stored, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_pages()


def main(arguments: list[str]) -> int:
    if arguments == ["--check"]:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    if arguments == ["--pages"]:
        write_pages()
        return 0
    regenerate(set(arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
