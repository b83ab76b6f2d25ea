"""Bring your own optimizer: module:Class, file.py:Class and zoo:name resolve to a checked Optimizer class."""

import importlib.util
import textwrap

import pytest
import torch

from optbench import verify_classes
from optbench.errors import OptbenchError
from optbench.optimizers import external, registry

USER_SGD = textwrap.dedent('''
    import torch

    class PlainSGD(torch.optim.Optimizer):
        """θ ← θ - γ (g + λθ): a user's own optimizer in a dozen lines."""
        def __init__(self, params, lr=0.01, weight_decay=0.0):
            super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

        @torch.no_grad()
        def step(self, closure=None):
            with torch.enable_grad():
                loss = closure() if closure is not None else None
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad + group["weight_decay"] * p, alpha=-group["lr"])
            return loss

    def not_a_class():
        pass
''')


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_optim.py"
    path.write_text(USER_SGD)
    return path


def test_user_file_class_resolves_and_certifies_against_torch_sgd(user_file):
    cls, origin = external.resolve_optimizer(f"{user_file}:PlainSGD")
    assert issubclass(cls, torch.optim.Optimizer) and cls.__name__ == "PlainSGD"
    assert origin.file == str(user_file) and origin.version is None
    assert len(origin.source_sha256) == 64
    checks = verify_classes.certify_classes(cls, torch.optim.SGD, hparams={"lr": 0.05})
    assert [c.flags for c in checks] == [{"weight_decay": 0.0}, {"weight_decay": 0.1}]
    assert all(c.passed for c in checks), checks


def test_editing_the_file_changes_the_cache_key_and_the_class(user_file):
    cls, before = external.resolve_optimizer(f"{user_file}:PlainSGD")
    user_file.write_text(USER_SGD.replace('alpha=-group["lr"]', 'alpha=-2 * group["lr"]'))
    edited, after = external.resolve_optimizer(f"{user_file}:PlainSGD")
    assert before.cache_key() != after.cache_key() and edited is not cls
    x = torch.ones(1, requires_grad=True)
    x.grad = torch.ones(1)
    edited([x], lr=0.1).step()
    assert x.item() == pytest.approx(0.8)  # the edited update, not the stale one


def test_module_class_records_package_version():
    cls, origin = external.resolve_optimizer("torch.optim:Adam")
    assert cls is torch.optim.Adam
    assert origin.version == importlib.metadata.version("torch")
    assert origin.cache_key() == {
        "class": "torch.optim.adam:Adam",
        "version": origin.version,
        "source_sha256": origin.source_sha256,
    }


def test_zoo_prefix_matches_names_loosely():
    pytest.importorskip("pytorch_optimizer")
    import pytorch_optimizer

    cls, origin = external.resolve_optimizer("pytorch_optimizer:lion")
    assert cls is pytorch_optimizer.Lion
    assert origin.version == importlib.metadata.version("pytorch-optimizer")
    assert (
        external.resolve_optimizer("pytorch_optimizer:schedule-free-adamw")[0]
        is pytorch_optimizer.ScheduleFreeAdamW
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("nope_pkg.module:Opt", "cannot import module 'nope_pkg.module'"),
        ("torch.optim:Adma", "'torch.optim' has no optimizer class 'Adma'; did you mean 'Adam'?"),
        ("torch.nn:Linear", "'torch.nn:Linear' is not a torch.optim.Optimizer subclass"),
        ("/no/such/file.py:Opt", "optimizer file '/no/such/file.py' not found"),
        ("torch.optim:", "malformed optimizer"),
    ],
)
def test_bad_specs_are_one_line_errors(text, message):
    with pytest.raises(OptbenchError, match=message.replace("(", r"\(").replace("?", r"\?")) as raised:
        external.resolve_optimizer(text)
    assert "\n" not in str(raised.value)


def test_user_file_errors(user_file, tmp_path):
    with pytest.raises(OptbenchError, match="is not a torch.optim.Optimizer subclass \\(it is a function\\)"):
        external.resolve_optimizer(f"{user_file}:not_a_class")
    broken = tmp_path / "broken.py"
    broken.write_text("def oops(:\n")
    with pytest.raises(OptbenchError, match="importing '.*broken.py' failed: SyntaxError"):
        external.resolve_optimizer(f"{broken}:X")


def test_uninstalled_zoo_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(external.ZOO_PACKAGES, "no_such_zoo_pkg", "no-such-zoo")
    with pytest.raises(OptbenchError, match="'no_such_zoo_pkg' is not installed: pip install no-such-zoo"):
        external.resolve_optimizer("no_such_zoo_pkg:lion")


def test_hyperparameters_are_checked_against_the_signature(user_file):
    cls, _ = external.resolve_optimizer(f"{user_file}:PlainSGD")
    assert external.hyperparameter_names(cls) == ["lr", "weight_decay"]
    external.check_hyperparameters(cls, {"lr": 0.1}, "spec")
    with pytest.raises(OptbenchError, match="'lrr'; did you mean 'lr'"):
        external.check_hyperparameters(cls, {"lrr": 0.1}, "spec")


def test_kwargs_are_followed_to_the_base_class():
    class Wrapped(torch.optim.Adam):
        def __init__(self, params, scale=1.0, **kwargs):
            super().__init__(params, **kwargs)

    names = external.hyperparameter_names(Wrapped)
    assert names[0] == "scale" and {"lr", "betas", "amsgrad"} <= set(names)


@pytest.mark.parametrize(
    "text, external_, target, settings",
    [
        ("mypkg.mod:MyOpt:lr=0.1,betas=0.9/0.99", True, "mypkg.mod:MyOpt", "lr=0.1,betas=0.9/0.99"),
        ("path/to/opt.py:MyOpt", True, "path/to/opt.py:MyOpt", ""),
        ("pytorch_optimizer:lion:lr=1e-4", True, "pytorch_optimizer:lion", "lr=1e-4"),
        ("adam:lr=0.1", False, None, None),
        ("torch:adam:lr=0.1", False, None, None),
    ],
)
def test_external_specs_are_told_apart_from_ours(text, external_, target, settings):
    assert registry.is_external(text) is external_
    if external_:
        assert external.split_spec(text) == (target, settings)


def test_file_module_is_importable_by_name_for_workers(user_file):
    import pickle

    cls, _ = external.resolve_optimizer(f"{user_file}:PlainSGD")
    assert pickle.loads(pickle.dumps(cls)) is cls
    assert importlib.util.find_spec(cls.__module__) is not None or cls.__module__ in __import__("sys").modules
