"""docs/make_images.py --check: an image drawn by older drawing code is reported stale."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_script(monkeypatch):
    spec = importlib.util.spec_from_file_location("make_images", ROOT / "docs" / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_images", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_changed_drawing_code_makes_exactly_its_images_stale(tmp_path, monkeypatch):
    script = load_script(monkeypatch)
    plots = tmp_path / "optbench" / "plots"
    plots.mkdir(parents=True)
    for module in ("style", "surfaces", "grid_map", "fair", "training", "sweeps"):
        (plots / f"{module}.py").write_text("A = 1\n")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setattr(script, "PAGES", [])
    monkeypatch.setattr(script, "PLOTS", plots)
    monkeypatch.setattr(script, "SHARED_DRAWING_CODE", [plots / "style.py"])
    monkeypatch.setattr(script, "MANIFEST", tmp_path / "made_with.json")
    made_with = {
        image: script.fingerprint(recipe) for recipe in script.RECIPES for image in recipe.figures.values()
    }
    (tmp_path / "made_with.json").write_text(str(made_with).replace("'", '"'))

    def stale():
        return sorted(problem.split()[0] for problem in script.check() if "stale" in problem)

    assert stale() == []
    (plots / "training.py").write_text("A = 2\n")
    drawn_by_training = [
        f"docs/images/{image}"
        for recipe in script.RECIPES
        if "training" in recipe.drawn_by
        for image in recipe.figures.values()
    ]
    assert drawn_by_training and stale() == sorted(drawn_by_training)
    (plots / "style.py").write_text("A = 2\n")  # shared by every figure
    assert len(stale()) == len(made_with)
