"""docs/make_images.py --check: an image drawn by older drawing code is reported stale."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_script(monkeypatch):
    spec = importlib.util.spec_from_file_location("make_images", ROOT / "docs" / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_images", module)   # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_changed_drawing_code_makes_its_images_stale(tmp_path, monkeypatch):
    script = load_script(monkeypatch)
    code = tmp_path / "optbench" / "plots" / "style.py"
    code.parent.mkdir(parents=True)
    code.write_text("A = 1\n")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setattr(script, "PAGES", [])
    monkeypatch.setattr(script, "DRAWING_CODE", [code])
    monkeypatch.setattr(script, "MANIFEST", tmp_path / "made_with.json")
    recipe = script.RECIPES[0]
    before = script.fingerprint(recipe)
    (tmp_path / "made_with.json").write_text(
        '{' + ", ".join(f'"{image}": "{before}"' for image in recipe.figures.values()) + '}')
    stale = lambda: [p for p in script.check() if "stale" in p and any(i in p for i in recipe.figures.values())]  # noqa: E731
    assert stale() == []
    code.write_text("A = 2\n")
    assert script.fingerprint(recipe) != before
    assert len(stale()) == len(recipe.figures)
