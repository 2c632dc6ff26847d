"""`rsynth export`, `rsynth import processbench` and `rsynth eval-labels`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rsynth.cli import options as opt
from rsynth.cli.common import console, err_console, summary_table
from rsynth.cli.params import with_configs
from rsynth.errors import UserError
from rsynth.stages.export import ExportParams


@with_configs(params=ExportParams)
def export(
    input: Path = opt.INPUT("An annotate-prm output directory (RL formats: any rsynth output)."),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output file; its suffix is its format: .jsonl (JSON lines), .json (one array) or .parquet.",
    ),
    params: ExportParams = ExportParams(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors and warnings."),
) -> None:
    """Write labelled traces as TRL stepwise, Math-Shepherd, OpenRLHF, ProcessBench or full JSONL rows."""
    from rsynth.data.formats import ExportError
    from rsynth.data.readers import check_input
    from rsynth.data.shards import MANIFEST, load_manifest

    check_input(str(input))
    if not (input / MANIFEST).exists():
        raise UserError(f"{input}: not an rsynth output directory (no {MANIFEST})")
    try:
        counts = params.write(input, out)
    except ExportError as exc:
        raise UserError(str(exc)) from None
    if not load_manifest(input).get("complete"):
        err_console.print(
            f"[yellow]warning[/yellow]: {input} is an unfinished run; exported only the rows it has committed "
            "(re-run its command to finish it)",
            highlight=False,
            soft_wrap=True,
        )
    if quiet:
        return
    console.print(summary_table(f"export --format {params.format} --label {params.label}", counts))
    loader = {".parquet": "parquet"}.get(out.suffix, "json")
    console.print(f"wrote {out} — load with datasets.load_dataset('{loader}', data_files='{out}', split='train')")
    if params.format == "trl":
        console.print(
            f"train with trl.experimental.prm.PRMConfig(step_separator={counts['step separator']}) (TRL <= 1.13.0)",
            markup=False,
        )


import_app = typer.Typer(help="Import external datasets as rsynth traces.", no_args_is_help=True)


@import_app.command("processbench")
def import_processbench(
    file: str = typer.Argument(..., help="A ProcessBench JSON file (list of items) or JSONL."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for the imported traces."),
    answers: Optional[str] = typer.Option(
        None, "--answers", help="Reference answers joined by problem text, e.g. gsm8k_test.jsonl."
    ),
    question_field: str = typer.Option(
        "question",
        "--question-field",
        help="--answers file: the column holding the problem text the items are joined on.",
    ),
    answer_field: str = typer.Option(
        "answer", "--answer-field", help="Answer column; GSM8K-style '#### N' endings are parsed."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out instead of refusing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors and warnings."),
) -> None:
    """Read ProcessBench items as traces (steps, verdict from final_answer_correct) for annotate-prm."""
    from rsynth.stages.processbench import import_processbench as run_import

    stats = run_import(
        file, out, answers, question_field=question_field, answer_field=answer_field, overwrite=overwrite
    )
    if not quiet:
        console.print(summary_table("import processbench", stats))


def eval_labels(
    pred: Path = typer.Option(
        ...,
        "--pred",
        help="An annotate-prm or judge output directory (first error per trace id), or a "
        "JSON/JSONL file of {id, prediction} rows (or {id, generated_critique}) as ProcessBench writes.",
    ),
    gold: str = typer.Option(..., "--gold", help="ProcessBench-format file with id and label."),
    source: str = typer.Option(
        "auto",
        "--label-source",
        help="mc (annotate-prm first_error) | judge (judge_first_error) | auto (judge for a judge output).",
    ),
    reading: str = typer.Option(
        "official",
        "--reading",
        help="How critiques are read: official (ProcessBench's run_eval.py: the last "
        "\\boxed{} read with int()) | lenient (also \\boxed{paragraph_N}, \\boxed{$N$}; reported as such).",
    ),
    require_rollouts: bool = typer.Option(
        False,
        "--require-rollouts",
        help="mc labels: score only items whose label rests on rollout estimates (given mode labels a trace with a right "
        "final answer all-positive without any); the others are counted and left out.",
    ),
) -> None:
    """ProcessBench accuracy on erroneous and on correct items, and their F1, of MC or judge labels.

    For MC labels it also reports how many items were labelled without rollouts and their share of
    each accuracy, since in given mode those labels come from the final answer alone."""
    from rsynth.data.formats import processbench_scores
    from rsynth.data.readers import FieldSpec, RowError, check_input, map_fields, read_records
    from rsynth.stages.judge import LABEL_SOURCES, predicted_first_errors
    from rsynth.stages.processbench_pred import READING_NOTES, READINGS, file_predictions, judge_predictions

    check_input(str(pred))
    check_input(gold)
    if source not in LABEL_SOURCES:
        raise UserError(f"--label-source {source!r}: expected one of {', '.join(LABEL_SOURCES)}")
    if reading not in READINGS:
        raise UserError(f"--reading {reading!r}: expected one of {', '.join(READINGS)}")
    if pred.is_file():
        source, predictions = "file", file_predictions(str(pred), reading)
    else:
        source, predictions = predicted_first_errors(pred, source)
        if source == "judge":
            predictions = judge_predictions(pred, reading)
    note = READING_NOTES[reading] if source != "mc" else "MC first_error, no critique to read"
    items = []
    for rec in read_records(gold):
        view = (
            rec if isinstance(rec, RowError) else map_fields(rec, [FieldSpec("id", str), FieldSpec("label", int)], {})
        )
        if isinstance(view, RowError):
            raise UserError(f"{view.source}: row {view.row}: {view.reason}")
        items.append(view)
    if require_rollouts and source != "mc":
        raise UserError("--require-rollouts applies to mc labels (annotate-prm's first_error), not to judge labels")
    extra: dict = {}
    if source == "mc":
        from rsynth.stages.label_summary import rollout_backed, rollout_report

        backed = rollout_backed(pred)
        extra = rollout_report(predictions, items, backed)
        if require_rollouts:
            kept = [g for g in items if backed.get(g["id"]) is True]
            extra = {"items left out (label without rollouts, or no prediction)": len(items) - len(kept)}
            items = kept
    console.print(f"predictions: {note}", markup=False, highlight=False, soft_wrap=True)
    title = f"eval-labels {pred} ({source} labels{', rollout-backed only' if require_rollouts else ''}) vs {gold}"
    console.print(summary_table(title, {**processbench_scores(predictions, items), **extra}))
