"""The one result contract, and `load(folder)` that reads any saved result back.

Every result class subclasses `Result` and has:
- a unique `kind` (meta.json's "kind"; a second class claiming one is refused when it is defined);
- `tables()`: file stem -> tidy DataFrame, as `save` writes them;
- `save(folder, force=False)`: the tables and meta.json, each atomically; saving never draws;
- classmethod `load(folder)`: the result `save` wrote (OptbenchError names a missing, corrupt or
  foreign file);
- `plot()`: file stem -> matplotlib Figure, drawn from the tables alone (the caller saves them).

`load` reads its tables through `read_tables` and the kind's `TableSchema`s: one check of every saved
table (its columns and their types, identifiers finite, the rows the run in meta.json made), so that a
damaged, cut or foreign table is one OptbenchError naming it before any figure is drawn.

So `optbench plot DIR` is `load(DIR).plot()` and saving what it returns, whatever made DIR.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pandas as pd

from ..errors import OptbenchError
from ..results import META_FILE, claim_folder, read_metadata, read_table, write_metadata, write_table

KINDS: dict[str, type[Result]] = {}  # meta.json's "kind" -> the class that loads it


class Result:
    """Base of the result classes: subclasses hold `meta` (the resolved spec), `seed` and their tables."""

    kind: ClassVar[str]
    meta: dict
    seed: int
    # run name -> the one line its user's class failed with (meta.json's "failed"); a result whose runs
    # can fail sets its own, the others keep this empty default
    failed: Mapping[str, str] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            if cls.kind in KINDS and KINDS[cls.kind].__qualname__ != cls.__qualname__:
                raise TypeError(f"result kind {cls.kind!r} belongs to {KINDS[cls.kind].__name__} already")
            KINDS[cls.kind] = cls

    def tables(self) -> dict[str, pd.DataFrame]:
        """File stem -> table, as `save` writes them (absent tables left out)."""
        raise NotImplementedError

    def plot(self) -> dict:
        """File stem -> matplotlib Figure."""
        raise NotImplementedError

    @classmethod
    def load(cls, folder) -> Result:
        raise NotImplementedError

    def save(self, folder, force: bool = False) -> Path:
        """Write every table as `folder/<stem>.parquet` and meta.json, each atomically; returns the folder.

        A folder holding another run is refused (OptbenchError) unless `force`, which first removes it;
        the same run's earlier outputs are replaced (`results.claim_folder`). Draws nothing.
        """
        folder = Path(folder)
        claim_folder(folder, self.kind, self.meta, self.seed, force)
        for stem, table in self.tables().items():
            write_table(table, folder / f"{stem}.parquet")
        write_metadata(folder, self.kind, self.meta, self.seed, failed=dict(self.failed))
        return folder

    def __repr__(self) -> str:
        shapes = ", ".join(f"{stem}: {len(table)} rows" for stem, table in self.tables().items())
        return f"<{type(self).__name__} {self.kind} ({shapes})>"


def load(folder) -> Result:
    """The result saved in `folder`, whatever its kind (compare, noise_floor, grid, train, sweep, bench).

    Raises OptbenchError for a folder that is not an optbench results folder, records an unknown kind
    or no spec, or lacks its tables.
    """
    from .. import sweeps  # noqa: F401 - defines SweepResult, so its kind is known
    from ..bench import result as _bench  # noqa: F401 - defines BenchResult, so its kind is known

    folder = Path(folder)
    meta = read_metadata(folder)
    kind = meta["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        raise OptbenchError(f"{folder / META_FILE}: kind {kind!r} is not one of {', '.join(sorted(KINDS))}")
    if not isinstance(meta.get("spec"), dict):
        raise OptbenchError(f"{folder / META_FILE} records no spec (the settings that made the results)")
    return KINDS[kind].load(folder)


def require_spec(folder, meta: dict, *keys: str) -> dict:
    """meta.json's spec, once it is known to hold `keys`; OptbenchError names the first missing."""
    spec = meta.get("spec")
    if not isinstance(spec, dict):
        raise OptbenchError(
            f"{Path(folder) / META_FILE} records no spec (the settings that made the results)"
        )
    missing = [key for key in keys if key not in spec]
    if missing:
        raise OptbenchError(f"{Path(folder) / META_FILE}: the {meta['kind']} spec lacks '{missing[0]}'")
    return spec


def require_tables(folder) -> None:
    """Refuse a folder with no result table yet (OptbenchError: nothing to draw)."""
    if not any(Path(folder).glob("*.parquet")):
        raise OptbenchError(f"{folder} holds no result tables yet: nothing to draw")


# the kinds of column a TableSchema names
TEXT = "text"  # a name or label: any values
KEY = "key"  # a number that identifies a row (step, trial, an axis value): finite
MEASURE = "measure"  # a measured number: NaN and inf allowed (divergence is a result)
CURVE = "curve"  # a measure recorded from each run's start, which is finite: at least one value finite
FLAG = "flag"  # true/false


@dataclass(frozen=True)
class TableSchema:
    """What one saved table must hold to be drawn: `columns` (name -> TEXT, KEY, MEASURE or FLAG; other
    columns may be present), whether the folder must hold it (`required`), and `rows`: the number of
    rows the run recorded in meta.json made, where its spec says (None: not checked)."""

    stem: str
    columns: Mapping[str, str]
    required: bool = True
    rows: int | None = None


def read_tables(folder, meta: dict, schemas) -> dict[str, pd.DataFrame | None]:
    """Each schema's table of `folder` (None for an absent optional one), checked by `check_table`.

    Raises OptbenchError naming the first table that is missing, unreadable, lacks a column, holds text
    where numbers belong or a non-finite identifier, is empty, or holds other than the rows its run made.
    """
    tables = {}
    for schema in schemas:
        path = Path(folder) / f"{schema.stem}.parquet"
        if not path.exists():
            if schema.required:
                raise OptbenchError(f"{folder} lacks {path.name}, a table of its {meta['kind']} result")
            tables[schema.stem] = None
            continue
        table = read_table(path, tuple(schema.columns))
        check_table(path, table, schema)
        tables[schema.stem] = table
    return tables


def check_table(path, table: pd.DataFrame, schema: TableSchema) -> None:
    """Refuse (OptbenchError naming `path`, the column and a value) a table that breaks `schema`."""
    if table.empty:
        if schema.required:
            raise OptbenchError(f"{path} has no rows: the results table is empty or damaged")
        return
    for name, kind in schema.columns.items():
        column = table[name]
        if kind in (KEY, MEASURE, CURVE) and not (
            pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        ):
            example = next((value for value in column if not isinstance(value, (int, float))), column.iloc[0])
            raise OptbenchError(f"column '{name}' of {path} holds {example!r} where numbers belong")
        if kind == FLAG and not pd.api.types.is_bool_dtype(column):
            raise OptbenchError(
                f"column '{name}' of {path} holds {column.iloc[0]!r} where true/false belongs"
            )
        if kind == CURVE and not np.isfinite(column.to_numpy(dtype=float)).any():
            raise OptbenchError(
                f"column '{name}' of {path} holds no finite value, though every run records a finite "
                "start: the table is damaged"
            )
        if kind == KEY:
            bad = ~pd.Series(np.isfinite(column.to_numpy(dtype=float)), index=column.index)
            if bad.any():
                row = int(np.argmax(bad.to_numpy()))
                raise OptbenchError(
                    f"column '{name}' of {path} holds {column.iloc[row]} in row {row}, where a finite "
                    "number identifies the row"
                )
    if schema.rows is not None and len(table) != schema.rows:
        raise OptbenchError(
            f"{path} holds {len(table):,} row(s) where the run its meta.json records made {schema.rows:,}: "
            "the table is cut or damaged"
        )
