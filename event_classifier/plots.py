"""Figures written next to results: headless matplotlib, saved atomically."""

from __future__ import annotations

from pathlib import Path


def new_figure(**kwargs):
    """(figure, axes) from matplotlib's non-interactive backend, so plots work without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(**kwargs)


def save_figure(figure, path: Path, dpi: int = 120) -> None:
    """Write a PNG atomically (io.atomic_path), so a crash never leaves half an image."""
    import matplotlib.pyplot as plt

    from event_classifier.io import atomic_path

    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=dpi)
    plt.close(figure)
