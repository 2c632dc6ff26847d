"""PNG plots for dataset cards (matplotlib, Agg backend: no display needed on CI or a cluster node)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def _pyplot():
    from rsynth.errors import require

    matplotlib = require("matplotlib", feature="dataset card plots", extra="plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def histogram(
    values: list[float], path: Path, *, title: str, xlabel: str, bins: int = 20, lo: float = 0.0, hi: float = 1.0
) -> Path:
    """Histogram of values in [lo, hi] (MC values, pass rates), with the count in the title."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.hist(values, bins=bins, range=(lo, hi), color="#4C72B0", edgecolor="white")
    ax.set(title=f"{title} (n={len(values)})", xlabel=xlabel, ylabel="count", xlim=(lo, hi))
    return _save(fig, plt, path)


def counts_bar(values: list[int], path: Path, *, title: str, xlabel: str) -> Path:
    """One bar per integer value (first-error index, steps per trace), so every position is visible."""
    plt = _pyplot()
    counts = Counter(values)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    xs = sorted(counts)
    ax.bar(xs, [counts[x] for x in xs], color="#55A868", edgecolor="white", width=0.8)
    ax.set(title=f"{title} (n={len(values)})", xlabel=xlabel, ylabel="count")
    if xs:
        ax.set_xticks(range(min(xs), max(xs) + 1))
    return _save(fig, plt, path)


def _save(fig, plt, path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    fig.axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))  # counts are whole numbers
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})  # no version stamp: same data, same bytes
    plt.close(fig)
    return path
