"""The rows of `sft-critique` and `step-dpo` exports (`rsynth.data.formats_pairs`): which split each
reads, and a refusal that names the command to run when the input holds nothing to export.
`rsynth.stages.export.export_file` writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsynth.data.formats import ExportError, parse_separator


def pair_rows(
    input: Path, fmt: str, *, margin: float = 0.5, step_separator: str = "\n"
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows, counts): `input`'s kept critiques (sft-critique) or its tree's sibling step pairs (step-dpo)."""
    from rsynth.data.formats_pairs import critique_row, step_pairs
    from rsynth.data.shards import iter_split_rows

    if fmt == "sft-critique":
        rows = [critique_row(r) for r in iter_split_rows(input, "data") if r.get("critique") is not None]
        if not rows:
            raise ExportError(f"{input}: no kept critiques in data/ (run rsynth judge, then rsynth filter-critiques)")
        return rows, {"rows written": len(rows)}
    if not 0.0 < margin <= 1.0:
        raise ExportError(f"--margin {margin}: expected 0 < margin <= 1 (the least MC difference of a pair)")
    if not (Path(input) / "tree").is_dir():
        raise ExportError(
            f"{input}: no tree/ split (step-dpo pairs come from an annotate-prm --method omegaprm output)"
        )
    pairs, counts = step_pairs(iter_split_rows(input, "tree"), margin, parse_separator(step_separator))
    if not pairs:
        raise ExportError(
            f"{input}: no sibling steps whose MC values differ by >= {margin} "
            f"({counts['sibling pairs']} sibling pairs in tree/); lower --margin or annotate more"
        )
    return pairs, {"rows written": len(pairs), **counts, "margin": margin}
