"""What every experiment's result shares: its tables saved through `optbench.results`, beside meta.json."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd

from ..results import claim_folder, write_metadata, write_table


class Result:
    """Base of the result dataclasses: subclasses hold `meta` (the resolved spec), `seed` and their tables."""

    kind: ClassVar[str]  # meta.json's "kind", which `optbench plot` dispatches on
    meta: dict
    seed: int

    def tables(self) -> dict[str, pd.DataFrame]:
        """File stem -> table, as `save` writes them (absent tables left out)."""
        raise NotImplementedError

    def save(self, folder, force: bool = False) -> Path:
        """Write every table as `folder/<stem>.parquet` and meta.json, each atomically; returns the folder.

        A folder holding another run is refused (OptbenchError) unless `force`, which first removes it;
        the same run's earlier outputs are replaced (`results.claim_folder`).
        """
        folder = Path(folder)
        claim_folder(folder, self.kind, self.meta, self.seed, force)
        for stem, table in self.tables().items():
            write_table(table, folder / f"{stem}.parquet")
        write_metadata(folder, self.kind, self.meta, self.seed)
        return folder

    def __repr__(self) -> str:
        shapes = ", ".join(f"{stem}: {len(table)} rows" for stem, table in self.tables().items())
        return f"<{type(self).__name__} {self.kind} ({shapes})>"
