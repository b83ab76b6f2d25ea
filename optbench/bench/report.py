"""The benchmark's HTML report: one self-contained file (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import io
from pathlib import Path


def write_report(result, path: Path) -> Path:
    from ..results import atomic_write_bytes

    images = {}
    import matplotlib.pyplot as plt

    for stem, fig in result.plot().items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        images[stem] = base64.b64encode(buffer.getvalue()).decode()
    body = "".join(f'<img alt="{s}" src="data:image/png;base64,{d}">' for s, d in images.items())
    atomic_write_bytes(
        path, f"<!doctype html><html><body>{body}{result.ranking.to_html()}</body></html>".encode()
    )
    return path
