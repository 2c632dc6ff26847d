"""The CLI behaves like a good citizen (issue 15): usage errors are typer's short usage and exit 2,
rich never eats an `[extra]`, and progress bars know the input's size."""

from __future__ import annotations

import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer

from rsynth.cli import app, main
from rsynth.cli.common import run_cli
from rsynth.errors import MissingExtra
from tests.build_support import rsynth

USAGE_MISTAKES = [
    ["export", "--bogus"],  # unknown option
    ["export", "-o", "x.jsonl"],  # missing --input
    ["generate", "solutions", "-i", "p.jsonl", "-o", "out", "--n-samples", "abc"],  # not an int
    ["exprot"],  # misspelt command
    ["annotate-prm", "-i", "p.jsonl", "-o", "out", "--k", "abc"],
    ["card"],  # missing argument
    ["verify", "math", "--bogus"],
    ["decontaminate", "-i", "p.jsonl", "-o", "out", "--ngram", "1"],  # below min
]


@pytest.mark.parametrize("argv", USAGE_MISTAKES, ids=lambda a: " ".join(a))
def test_usage_errors_print_short_usage_and_exit_2(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["rsynth", *argv])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "Traceback" not in err and len(err.splitlines()) <= 8
    assert "Usage:" in err or "No such command" in err


def test_usage_error_as_a_user_sees_it():
    res = rsynth("export", "--bogus")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "Usage:" in res.stderr and "No such option: --bogus" in res.stderr


def test_install_hint_keeps_the_extra(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["rsynth"])
    hint = typer.Typer()

    @hint.command()
    def go() -> None:
        raise MissingExtra("the vllm engine", "vllm", "vllm")

    with pytest.raises(SystemExit) as exit_info:
        run_cli(hint)
    assert exit_info.value.code == 2
    assert "pip install 'rsynth[vllm]'" in capsys.readouterr().err


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_help_texts_escape_brackets_for_rich():
    """Typer renders help with rich markup, which drops `[semantic]`: every bracket must be escaped."""
    root = typer.main.get_command(app)
    unescaped = []
    for path, command in _commands(root):
        for text in [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]:
            if "[" in text.replace("\\[", ""):
                unescaped.append((" ".join(path), text))
    assert not unescaped


def _jsonl(path, n):
    path.write_text("".join(json.dumps({"problem": f"p{i}", "answer": str(i)}) + "\n\n" for i in range(n)))
    return path


def test_progress_total_is_the_input_row_count(tmp_path):
    """A bar shows 8/12, not 8/?: JSON lines (blank lines skipped), Parquet, rsynth outputs; --limit caps it."""
    from rsynth.data.readers import read_records
    from rsynth.data.schema import ERROR_SCHEMA
    from rsynth.data.shards import ShardSetWriter
    from rsynth.runner.loop import _total
    from rsynth.runner.partition import Partition, partition_records

    jsonl = _jsonl(tmp_path / "p.jsonl", 12)
    assert _total(read_records(str(jsonl)), None) == 12
    assert _total(read_records(str(jsonl)), 5) == 5
    pq.write_table(pa.table({"problem": ["a", "b", "c"]}), tmp_path / "p.parquet")
    assert _total(read_records(str(tmp_path / "p.parquet")), None) == 3
    writer = ShardSetWriter(
        tmp_path / "out", {"data": pa.schema([("x", pa.string())]), "errors": ERROR_SCHEMA}, stage="t", run_key="k"
    )
    for i in range(7):
        writer.add("data", {"x": str(i)}, i)
        writer.input_done(i)
    writer.close()
    assert _total(read_records(str(tmp_path / "out")), None) == 7
    assert _total(partition_records(str(jsonl), Partition(4, 1), None, tmp_path / "s"), None) == 3
    assert _total(read_records(str(tmp_path / "missing.jsonl")), None) is None  # the reader reports it, not the bar


def test_progress_bar_renders_the_total(tmp_path, capsys):
    from rsynth.data.readers import read_records
    from rsynth.data.schema import ERROR_SCHEMA
    from rsynth.data.shards import ShardSetWriter
    from rsynth.runner.loop import run_stage

    writer = ShardSetWriter(
        tmp_path / "out", {"data": pa.schema([("x", pa.string())]), "errors": ERROR_SCHEMA}, stage="t", run_key="k"
    )
    run_stage(
        read_records(str(_jsonl(tmp_path / "p.jsonl", 3))),
        writer,
        validate=lambda r: r.data,
        batch_size=2,
        description="demo",
        process=lambda items: {it.index: [("data", {"x": it.value["problem"]})] for it in items},
    )
    assert "3/3" in capsys.readouterr().out
