"""Optimizers that are not optbench's own: a user's class, a file, or an optimizer-zoo package.

Three spellings name a class (each may be followed by `:name=value,...` settings in a spec)::

    package.module:ClassName        an importable module (any dotted name)
    path/to/file.py:ClassName       a Python file, imported by path
    pytorch_optimizer:lion          an installed zoo package (ZOO_PACKAGES); the name is matched
                                    case-insensitively, ignoring '-' and '_'

`resolve_optimizer` returns the class and an `Origin`: where it came from, the installed package
version and a SHA-256 of the file that defines the class, so a sweep cell keyed by
`Origin.cache_key()` is recomputed when the optimizer's source changes. Every user mistake (no such
file, module or class; not a `torch.optim.Optimizer`; an unknown hyperparameter) is one
`OptbenchError` line.

`external_algorithm` wraps a resolved class as an `ExternalAlgorithm`, the registry's `Algorithm`
shape, so every runner takes it where it takes optbench's own. An external class is assumed to
reduce across a tensor (one optimizer per trial on a surface) unless it sets the class attribute
`elementwise = True`, which lets a surface batch its trials in one [trials, dim] tensor.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import torch

from ..errors import OptbenchError, closest, did_you_mean
from .registry import ZOO_PACKAGES, Algorithm


@dataclass(frozen=True)
class Origin:
    """Where an external optimizer class came from (recorded in results metadata)."""

    spec: str                  # what the user wrote, e.g. 'pytorch_optimizer:lion'
    module: str                # the module defining the class
    class_name: str
    file: str | None           # the defining source file, when there is one
    distribution: str | None   # the installed package providing it ('pytorch-optimizer'), if any
    version: str | None        # that package's version
    source_sha256: str | None  # hash of `file`'s bytes

    def cache_key(self) -> dict:
        """What a sweep/benchmark cell key must include: a changed source or version is a new cell."""
        return {"class": f"{self.module}:{self.class_name}", "version": self.version,
                "source_sha256": self.source_sha256}

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExternalAlgorithm(Algorithm):
    """An external optimizer class in the registry's shape: `name` is the 'module:Class' text it was
    resolved from, `ours` and `theirs` are both the class (there is no twin to certify it against)."""

    cls: type | None = None
    origin: Origin | None = None

    @property
    def ours(self) -> type:
        return self.cls

    @property
    def theirs(self) -> type:
        return self.cls

    def defaults(self) -> dict:
        """The constructor's keyword defaults, following `**kwargs` up the class hierarchy."""
        names, defaults = hyperparameter_names(self.cls), {}
        for klass in self.cls.__mro__:
            if klass is torch.optim.Optimizer or "__init__" not in vars(klass):
                continue
            for parameter in inspect.signature(klass.__init__).parameters.values():
                if parameter.name in names and parameter.default is not parameter.empty:
                    defaults.setdefault(parameter.name, parameter.default)
        return {name: defaults[name] for name in names if name in defaults}


def external_algorithm(target: str) -> ExternalAlgorithm:
    """'module:Class', 'file.py:Class' or 'zoo:name' (no settings) -> ExternalAlgorithm; the errors of
    `resolve_optimizer`."""
    cls, origin = resolve_optimizer(target)
    return ExternalAlgorithm(target, cls.__name__, cls.__module__, flags={},
                             elementwise=getattr(cls, "elementwise", False) is True, cls=cls, origin=origin)


def split_spec(text: str) -> tuple[str, str]:
    """'mypkg.mod:MyOpt:lr=0.1,betas=0.9/0.99' -> ('mypkg.mod:MyOpt', 'lr=0.1,betas=0.9/0.99')."""
    head, _, rest = text.strip().partition(":")
    name, _, settings = rest.partition(":")
    if not head or not name.strip():
        raise OptbenchError(f"malformed optimizer '{text}': expected MODULE:CLASS, FILE.py:CLASS or "
                            f"ZOO:NAME, then optional :name=value,...")
    return f"{head}:{name.strip()}", settings


def class_name(target: str) -> str:
    """The name of the class a target names, for labels: 'file.py:MyOpt' and 'mypkg.mod:MyOpt' name it
    exactly ('MyOpt'); a zoo name is matched as `resolve_optimizer` matches it ('pytorch_optimizer:lion'
    -> 'Lion'), or kept as typed where the package cannot be imported."""
    head, _, name = target.partition(":")
    if head not in ZOO_PACKAGES:
        return name
    try:
        return _find_class(_import_module(head), name, fuzzy=True, where=head).__name__
    except OptbenchError:
        return name


def resolve_optimizer(text: str) -> tuple[type, Origin]:
    """'package.module:ClassName', 'path/to/file.py:ClassName' or 'zoo:name' -> (class, Origin).

    Raises OptbenchError (one line) when the module, file or class cannot be found or imported, or
    the class is not a `torch.optim.Optimizer` subclass.
    """
    target, _ = split_spec(text)
    head, name = target.split(":")
    module = _import_file(head) if head.endswith(".py") or "/" in head else _import_module(head)
    cls = _find_class(module, name, fuzzy=head in ZOO_PACKAGES, where=head)
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        kind = type(cls).__name__ if not inspect.isclass(cls) else f"class based on {cls.__mro__[1].__name__}"
        raise OptbenchError(f"'{target}' is not a torch.optim.Optimizer subclass (it is a {kind})")
    return cls, _origin(target, cls)


def hyperparameter_names(cls: type) -> list[str]:
    """The constructor's keyword names after `params`, following `**kwargs` up the class hierarchy.

    Names a class accepts only through `**kwargs` that no base class names are not listed: such a
    class would ignore a misspelt setting silently, so optbench refuses it instead. A base class's
    `defaults` (the dict `torch.optim.Optimizer` takes) is not a hyperparameter.
    """
    names: list[str] = []
    for klass in cls.__mro__:
        if klass is torch.optim.Optimizer or "__init__" not in vars(klass):
            continue
        parameters = list(inspect.signature(klass.__init__).parameters.values())[2:]   # after self, params
        names += [p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                  and p.name not in names and not (klass is not cls and p.name == "defaults")]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return names


def check_hyperparameters(cls: type, hparams: dict, text: str) -> None:
    """OptbenchError naming the first setting in `hparams` that `cls`'s constructor does not take."""
    allowed = hyperparameter_names(cls)
    for name in hparams:
        if name not in allowed:
            raise did_you_mean(f"hyperparameter of {cls.__name__} (in '{text}')", name, allowed)


def _import_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if name in ZOO_PACKAGES and error.name == name:
            raise OptbenchError(f"'{name}' is not installed: pip install {ZOO_PACKAGES[name]}") from None
        raise OptbenchError(f"cannot import module '{name}': {error}") from None
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the user's module failed at import: one line
        raise OptbenchError(f"importing '{name}' failed: {type(error).__name__}: {error}") from None


def _import_file(path_text: str):
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise OptbenchError(f"optimizer file '{path_text}' not found")
    # One module name per file path and content, registered so pickling and forked workers find the
    # class; an edited file is a new module, never the stale one.
    digest = hashlib.sha256(str(path).encode() + b"\0" + path.read_bytes()).hexdigest()[:12]
    module_name = f"optbench_user_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the user's file failed at import: one line
        del sys.modules[module_name]
        raise OptbenchError(f"importing '{path_text}' failed: {type(error).__name__}: {error}") from None
    return module


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _find_class(module, name: str, fuzzy: bool, where: str):
    if hasattr(module, name):
        return getattr(module, name)
    optimizers = {attribute: value for attribute, value in vars(module).items()
                  if inspect.isclass(value) and issubclass(value, torch.optim.Optimizer)
                  and value is not torch.optim.Optimizer}
    if fuzzy:
        matches = [value for attribute, value in optimizers.items() if _key(attribute) == _key(name)]
        if matches:
            return matches[0]
    guess = closest(name, optimizers)
    hint = f"; did you mean '{guess}'?" if guess else ""
    raise OptbenchError(f"'{where}' has no optimizer class '{name}'{hint} "
                        f"(optimizers there: {', '.join(sorted(optimizers)) or 'none'})")


@functools.cache
def _distributions_by_module() -> dict:
    return packages_distributions()     # scans every installed package: once per process


def _origin(spec: str, cls: type) -> Origin:
    try:
        file = inspect.getsourcefile(cls)
    except TypeError:
        file = None
    sha = hashlib.sha256(Path(file).read_bytes()).hexdigest() if file and Path(file).is_file() else None
    top_level = cls.__module__.split(".")[0]
    distributions = _distributions_by_module().get(top_level) or []
    distribution = distributions[0] if distributions else None
    try:
        package_version = version(distribution) if distribution else None
    except PackageNotFoundError:
        package_version = None
    return Origin(spec=spec, module=cls.__module__, class_name=cls.__qualname__, file=file,
                  distribution=distribution, version=package_version, source_sha256=sha)
