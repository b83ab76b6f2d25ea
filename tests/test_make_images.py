"""docs/make_images.py --check: an image drawn by older drawing code is reported stale; a quoted number
that differs from what its command gave, or that no command gives, is reported."""

import importlib.util
import json
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


def _page_quoting(tmp_path, script, monkeypatch, numbers: dict[str, str]):
    """A page quoting `numbers` (key -> value as printed), with quoted.json holding the values the
    recipes generated (every declared key, stored with its current fingerprint)."""
    stored = {
        key: {"value": f"value of {key}", "made_with": script.quotes_fingerprint(recipe)}
        for recipe in script.RECIPES
        for key in recipe.quotes
    }
    quoted = tmp_path / "quoted.json"
    quoted.write_text(json.dumps(stored))
    page = tmp_path / "page.md"
    page.write_text(
        "".join(f"x <!-- gen:{key} -->{value}<!-- /gen --> y\n" for key, value in numbers.items())
    )
    monkeypatch.setattr(script, "QUOTED", quoted)
    monkeypatch.setattr(script, "PAGES", [page])
    monkeypatch.setattr(script, "ROOT", tmp_path)
    return stored, page


def test_a_quoted_number_that_differs_from_its_command_is_caught(tmp_path, monkeypatch):
    script = load_script(monkeypatch)
    keys = [key for recipe in script.RECIPES for key in recipe.quotes]
    assert "fair.rmsprop.lr" in keys and "readme.sweep.b_crit" in keys
    current = {key: f"value of {key}" for key in keys}
    stored, page = _page_quoting(tmp_path, script, monkeypatch, current)
    assert script.check_quotes() == []
    # a hand-typed, stale value (the RMSprop lr of 23.7) is reported, naming the page and key
    _page_quoting(tmp_path, script, monkeypatch, {**current, "fair.rmsprop.lr": "23.7"})
    problems = script.check_quotes()
    assert len(problems) == 1 and "fair.rmsprop.lr" in problems[0] and "'23.7'" in problems[0]
    # --pages writes the generated value back, and the check passes again
    script.write_pages()
    assert "<!-- gen:fair.rmsprop.lr -->value of fair.rmsprop.lr<!-- /gen -->" in page.read_text()
    assert script.check_quotes() == []


def test_unknown_unquoted_and_stale_numbers_are_caught(tmp_path, monkeypatch):
    script = load_script(monkeypatch)
    keys = [key for recipe in script.RECIPES for key in recipe.quotes]
    current = {key: f"value of {key}" for key in keys}
    stored, _ = _page_quoting(tmp_path, script, monkeypatch, {**current, "no.such.key": "1"})
    assert script.check_quotes() == ["page.md quotes 'no.such.key', which no recipe makes"]
    missing = dict(current)
    del missing["sweep.b_crit"]
    _page_quoting(tmp_path, script, monkeypatch, missing)
    assert script.check_quotes() == ["a recipe makes the number 'sweep.b_crit', which no page quotes"]
    _page_quoting(tmp_path, script, monkeypatch, current)
    stored["readme.sweep.b_crit"]["made_with"] = "an older reader"
    script.QUOTED.write_text(json.dumps(stored))
    problems = script.check_quotes()
    assert len(problems) == 1 and "'readme.sweep.b_crit' is stale" in problems[0]
