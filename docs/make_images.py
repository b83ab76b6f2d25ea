"""Regenerate every image that the README and the docs show, from the command that makes it.

    python docs/make_images.py                 # every image (a few minutes on 2 cores)
    python docs/make_images.py sweep_lr ...    # only these images (and the commands behind them)
    python docs/make_images.py --check         # runs nothing: see below

Each recipe is an `optbench` command, run as a user would type it into a fresh folder, and the
figures it writes that the docs show. Running the commands (rather than copying figures by hand) is
what keeps a picture from going stale when the code that draws it changes. A recipe with `saved` redraws
a results folder committed under docs/ (`optbench plot`), for a run too long to repeat here (the
language model's, made by docs/lm_figure.py); its tables count in its fingerprint.

`--check` reads README.md and docs/*.md and fails (exit status 1, one line per problem) when an image
is shown that no recipe makes, a recipe makes an image that nothing shows, an image file is missing,
one page shows an image twice, or an image is stale: `docs/images/made_with.json` records, per image,
a fingerprint of its recipe and of the drawing code it was made with (the recipe's modules of
optbench/plots, with style.py and optbench/theory.py), and a change to either since makes the image
stale until it is regenerated. CI runs it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MANIFEST = IMAGES / "made_with.json"
PLOTS = ROOT / "optbench" / "plots"
SHARED_DRAWING_CODE = [PLOTS / "style.py", ROOT / "optbench" / "theory.py"]
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\((?:docs/)?images/([^)\s]+)\)")


@dataclass(frozen=True)
class Recipe:
    command: str  # what follows `optbench`, as typed; `--out DIR --format png` are added
    figures: dict[str, str]  # figure file in the command's --out folder -> image name in docs/images
    drawn_by: tuple[str, ...]  # the modules of optbench/plots that draw them (style.py always counts)
    saved: str | None = None  # a results folder under ROOT that `plot` redraws instead of running a command


RECIPES = [
    Recipe(
        "compare sgd adam rmsprop --surface elliptic",
        {"trajectories.png": "surfaces_elliptic_trajectories.png", "loss.png": "surfaces_elliptic_loss.png"},
        drawn_by=("surfaces",),
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
    Recipe("train --task scalar --trace", {"trace.png": "train_scalar_trace.png"}, drawn_by=("training",)),
    Recipe(
        "train --task linreg --optimizer sgd --optimizer momentum:lr=0.01 --optimizer adam:lr=0.05"
        " --optimizer sgd:lr=1.5",
        {"regression.png": "train_linreg.png"},
        drawn_by=("training",),
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


def saved_files(recipe: Recipe) -> list[Path]:
    """The tables and meta.json of a recipe's saved results folder (none for a command)."""
    if recipe.saved is None:
        return []
    folder = ROOT / recipe.saved
    return sorted([*folder.glob("*.parquet"), folder / "meta.json"])


def recorded() -> dict[str, str]:
    return json.loads(MANIFEST.read_text(encoding="utf-8")) if MANIFEST.exists() else {}


def shown_images() -> dict[Path, list[str]]:
    """Page -> the image names it shows, in order (repeats kept)."""
    return {page: IMAGE_LINK.findall(page.read_text(encoding="utf-8")) for page in PAGES}


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
    return problems


def regenerate(wanted: set[str]) -> None:
    unknown = wanted - {image for recipe in RECIPES for image in recipe.figures.values()}
    if unknown:
        raise SystemExit(f"no recipe makes {', '.join(sorted(unknown))}")
    for recipe in RECIPES:
        figures = {name: image for name, image in recipe.figures.items() if not wanted or image in wanted}
        if not figures:
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
            made_with = recorded()
            for name, image in figures.items():
                shutil.copyfile(out / name, IMAGES / image)
                made_with[image] = fingerprint(recipe)
                print(f"  {name} -> docs/images/{image}", file=sys.stderr)
            MANIFEST.write_text(json.dumps(made_with, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(arguments: list[str]) -> int:
    if arguments == ["--check"]:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    regenerate(set(arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
