"""Writing labelled traces to one export file: shared by `rsynth export`, the `export` recipe stage and
`rsynth.api`.

The file's suffix names its format (`.jsonl` JSON lines, `.json` one JSON array, `.parquet`); any
other suffix is refused rather than silently written as JSON lines. An input with nothing labelled
is refused too: a 0-byte export that "succeeded" is how a user loses a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsynth.config import param, validate_choices
from rsynth.data.formats import (
    DEFAULT_SEPARATOR,
    FORMATS,
    STEP_TAG,
    UNESTIMATED,
    ExportError,
    check_combination,
    parse_label,
    parse_separator,
)
from rsynth.data.formats_rl import RL_FORMATS
from rsynth.errors import UserError

SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass
class ExportParams:
    """`rsynth export` and the `export` recipe stage, declared once. Validation here is what a run would
    refuse before reading a row (format/label combination, separator, openrlhf's tokenizer), so
    `build --dry-run` refuses the same recipes a build would."""

    format: str = param("trl", "--format", " | ".join(FORMATS) + ".", choices=FORMATS)
    label: str = param("hard", "--label", "hard | soft | threshold=X (soft only with --format jsonl or openrlhf).")
    task: str = param("rsynth", "--task", "math-shepherd: the `task` column.")
    step_separator: str = param(
        "\\n",
        "--step-separator",
        "Text between steps where a format joins them (math-shepherd, openrlhf); "
        "for trl, the PRMConfig.step_separator to train with (TRL's default \\n). \\n and \\t are read as "
        "newline and tab.",
    )
    placeholder: str = param(
        STEP_TAG,
        "--placeholder",
        "openrlhf: the step placeholder token (--placeholder_token); must be one token of --tokenizer.",
    )
    tokenizer: str | None = param(
        None,
        "--tokenizer",
        "openrlhf: the reward model's tokenizer (path or hub id) the placeholder is checked against.",
    )
    unestimated: str = param(
        "refuse",
        "--unestimated",
        "soft/threshold labels of a step whose MC was never estimated: refuse (stop, "
        "naming it) | drop (leave the trace out) | mask (null label; --format jsonl). Never filled in from the "
        "hard label.",
        choices=UNESTIMATED,
    )
    margin: float = param(0.5, "--margin", "step-dpo: least MC difference between the chosen and the rejected step.")

    def __post_init__(self) -> None:
        validate_choices(self)
        try:
            check_combination(self.format, parse_label(self.label)[0], self.unestimated)
            parse_separator(self.step_separator)
        except ExportError as exc:
            raise UserError(str(exc)) from None
        if self.format == "openrlhf" and not self.tokenizer:
            raise UserError(NEEDS_TOKENIZER)
        if not 0.0 < self.margin <= 1.0:
            raise UserError(
                f"--margin {self.margin}: expected 0 < margin <= 1 (the least MC difference of a step-dpo pair)"
            )

    def write(self, input: Path, out: Path) -> dict[str, Any]:
        return export_file(
            input,
            out,
            self.format,
            self.label,
            self.task,
            step_separator=self.step_separator,
            placeholder=self.placeholder,
            tokenizer=self.tokenizer,
            unestimated=self.unestimated,
            margin=self.margin,
        )


NEEDS_TOKENIZER = (
    "--format openrlhf needs --tokenizer (the reward model's tokenizer) to check that the placeholder is one token"
)


def check_export_path(out: Path) -> None:
    """Refuse, before reading anything, a target that is a directory or whose suffix names no format."""
    if out.is_dir():
        raise ExportError(f"--out {out} is a directory; give a file ending in {', '.join(SUFFIXES)}")
    if out.suffix not in SUFFIXES:
        raise ExportError(
            f"--out {out}: unknown suffix {out.suffix or '(none)'!r}; expected one of {', '.join(SUFFIXES)}"
        )


def export_name(params: dict[str, Any]) -> str:
    """The file an `export` recipe stage writes inside its directory (read back by the card)."""
    return params.get("file") or f"{params['format']}.jsonl"


def export_file(
    input: Path,
    out: Path,
    fmt: str,
    label: str,
    task: str,
    *,
    step_separator: str = DEFAULT_SEPARATOR,
    placeholder: str = STEP_TAG,
    tokenizer: str | None = None,
    unestimated: str = "refuse",
    margin: float = 0.5,
) -> dict[str, Any]:
    """Write the labelled rows of `input`'s data split to `out`; returns counts.

    Raises `ExportError` for an impossible format/label combination (soft labels where the format
    stores booleans), an unknown suffix, an input without labels, an OpenRLHF placeholder that is
    not one token of `tokenizer`, or (`unestimated="refuse"`) a soft/threshold label of a step whose
    MC value was never estimated; `drop` leaves such traces out (counted), `mask` writes null.
    """
    from rsynth.data.formats import Unestimated, export_row
    from rsynth.data.formats_pairs import PAIR_FORMATS
    from rsynth.data.shards import iter_split_rows

    if fmt in PAIR_FORMATS:  # verifier and preference rows (rsynth.data.formats_pairs), not step labels
        from rsynth.stages.export_pairs import pair_rows

        check_export_path(out)
        rows, counts = pair_rows(Path(input), fmt, margin=margin, step_separator=step_separator)
        write_rows(out, rows)
        return counts
    kind, threshold = parse_label(label)
    check_combination(fmt, kind, unestimated)
    check_export_path(out)
    if fmt in RL_FORMATS:  # prompts + ground truth for RL trainers: labels play no part
        from rsynth.stages.export_rl import rl_export

        rl_rows, rl_counts = rl_export(input, out, fmt)
        write_rows(out, rl_rows)
        return rl_counts
    separator = parse_separator(step_separator)
    check = PlaceholderCheck(placeholder, tokenizer, kind) if fmt == "openrlhf" else None
    rows, skipped, dropped, masked, with_sep = [], 0, 0, 0, 0
    for row in iter_split_rows(input, "data"):
        if row.get("step_hard") is None:
            skipped += 1
            continue
        try:
            rows.append(export_row(row, fmt, kind, threshold, task, separator, placeholder, unestimated))
        except Unestimated:
            dropped += 1
            continue
        with_sep += sum(separator in s for s in row["steps"])
        if kind != "hard":
            masked += sum(m is None for m in row.get("step_mc") or [])
        if check is not None:
            check.row(rows[-1], row.get("id"))
    if not rows:
        why = (
            f"{dropped} dropped by --unestimated drop" if dropped else "none with step labels (run annotate-prm first)"
        )
        raise ExportError(f"{input}: nothing to export: {skipped + dropped} rows in data/, {why}")
    write_rows(out, rows)
    counts = {"rows written": len(rows), "rows without labels (skipped)": skipped}
    if kind != "hard":
        counts.update({"rows with unestimated steps (dropped)": dropped, "unestimated steps (masked, null)": masked})
    return {**counts, "step separator": repr(separator), "steps containing the separator": with_sep}


def write_rows(out: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows in the format `out`'s suffix names, atomically."""
    import json

    from rsynth.data.formats import dumps
    from rsynth.data.shards import atomic_write_bytes

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows), sink)
        atomic_write_bytes(out, sink.getvalue().to_pybytes())
    elif out.suffix == ".json":
        atomic_write_bytes(out, json.dumps(rows, ensure_ascii=False, default=str).encode())
    else:
        atomic_write_bytes(out, "".join(dumps(r) + "\n" for r in rows).encode())


class PlaceholderCheck:
    """OpenRLHF's contract, checked before writing: ProcessRewardDataset looks the placeholder (and the
    "+"/"-" reward tokens) up with `tokenizer.encode(tok, add_special_tokens=False)` and asserts one
    id, then puts labels where that id occurs in the tokenised input. So each placeholder must be
    one token alone AND stay that token in context (a leading space can merge into it)."""

    def __init__(self, placeholder: str, tokenizer: str | None, label_kind: str) -> None:
        if not tokenizer:
            raise ExportError(NEEDS_TOKENIZER)
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise ExportError(
                "--format openrlhf needs the 'transformers' package to check the placeholder: pip install 'rsynth[hf]'"
            ) from None
        try:
            self.tok = AutoTokenizer.from_pretrained(tokenizer)
        except (OSError, ValueError) as exc:
            raise ExportError(
                f"--tokenizer {tokenizer}: cannot load it: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        self.placeholder = placeholder
        self.id = self._one_token(placeholder, "placeholder", tokenizer)
        if label_kind != "soft":
            for reward in ("+", "-"):
                self._one_token(reward, "reward token", tokenizer)

    def _one_token(self, text: str, what: str, name: str) -> int:
        ids = self.tok.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ExportError(
                f"{what} {text!r} is {len(ids)} tokens of {name}, OpenRLHF needs exactly one; "
                "pass --placeholder with a single-token string of that tokenizer"
            )
        return ids[0]

    def row(self, out_row: dict[str, Any], trace_id: Any) -> None:
        found = self.tok.encode(out_row["input"], add_special_tokens=False).count(self.id)
        if found != len(out_row["value"]):
            raise ExportError(
                f"trace {trace_id!r}: placeholder {self.placeholder!r} tokenises to its id {found} times in context "
                f"for {len(out_row['value'])} steps (it merges with neighbouring text); pick another --placeholder"
            )
