"""Every input reader yields the same records; bad rows become `RowError`s with source, row and reason."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rsynth.data.readers import (
    FieldSpec,
    InputError,
    Record,
    RowError,
    check_input,
    map_fields,
    parse_field_map,
    read_records,
)
from rsynth.data.schema import PROBLEM_SCHEMA
from rsynth.data.shards import ShardSetWriter
from rsynth.stages.problem import PROBLEM_FIELDS
from rsynth.stages.solutions import validate_problem

ROWS = [{"question": f"What is {i} + {i}?", "answer": str(2 * i), "id": f"q{i}", "level": i % 3} for i in range(5)]


def _data(spec: str) -> list[dict]:
    out = []
    for rec in read_records(spec):
        assert isinstance(rec, Record), rec
        out.append(rec.data)
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_and_gzip(tmp_path: Path) -> None:
    assert _data(str(_write_jsonl(tmp_path / "p.jsonl", ROWS))) == ROWS
    with gzip.open(tmp_path / "p.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in ROWS)
    assert _data(str(tmp_path / "p.jsonl.gz")) == ROWS
    rows = list(read_records(str(tmp_path / "p.jsonl.gz")))
    assert [r.row for r in rows] == [1, 2, 3, 4, 5] and rows[0].source.endswith("p.jsonl.gz")


def test_json_array_and_json_lines_named_json(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(ROWS, indent=2))
    assert _data(str(tmp_path / "a.json")) == ROWS
    _write_jsonl(tmp_path / "l.json", ROWS)  # JSON Lines with a .json name
    assert _data(str(tmp_path / "l.json")) == ROWS


def test_parquet(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "p.parquet", row_group_size=2)
    assert _data(str(tmp_path / "p.parquet")) == ROWS
    assert [r.row for r in read_records(str(tmp_path / "p.parquet"))] == [1, 2, 3, 4, 5]


def test_arrow_file_and_stream(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(ROWS)
    with pa.OSFile(str(tmp_path / "file.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table, max_chunksize=2)
    with pa.OSFile(str(tmp_path / "stream.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=2)
    assert _data(str(tmp_path / "file.arrow")) == ROWS
    assert _data(str(tmp_path / "stream.arrow")) == ROWS


def test_save_to_disk_dir_and_dataset_dict(tmp_path: Path) -> None:
    import datasets

    ds = datasets.Dataset.from_list(ROWS)
    ds.save_to_disk(str(tmp_path / "ds"))
    assert _data(str(tmp_path / "ds")) == ROWS
    datasets.DatasetDict({"test": ds.select([0]), "train": ds}).save_to_disk(str(tmp_path / "dd"))
    assert _data(str(tmp_path / "dd")) == ROWS  # the train split is preferred


def test_rsynth_output_dir_reads_committed_data_only(tmp_path: Path) -> None:
    """An rsynth directory reads its manifest's data shards, in order, not other splits or strays."""
    rows = [
        {
            "id": f"p{i}",
            "domain": "math",
            "problem": f"q{i}",
            "reference_answer": str(i),
            "gold_steps": [f"s{i}"],
            "source": "t",
            "metadata": "{}",
            "source_ref": None,
        }
        for i in range(7)
    ]
    w = ShardSetWriter(tmp_path / "out", {"data": PROBLEM_SCHEMA}, stage="t", run_key="k", shard_size=3)
    for i, r in enumerate(rows):
        w.add("data", r, i)
        w.input_done(i)
    w.close({})
    (tmp_path / "out" / "data" / "shard-00099.arrow").write_bytes(b"not arrow")  # never in the manifest
    assert _data(str(tmp_path / "out")) == rows
    recs = [validate_problem(r, {}) for r in read_records(str(tmp_path / "out"))]
    assert [(p.id, p.answer) for p in recs] == [(f"p{i}", str(i)) for i in range(7)]  # reference_answer → answer


def test_plain_directory_of_files(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "a.jsonl", ROWS[:2])
    pq.write_table(pa.Table.from_pylist(ROWS[2:]), tmp_path / "b.parquet")
    assert _data(str(tmp_path)) == ROWS
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        list(read_records(str(tmp_path / "empty")))


def test_field_mapping_and_passthrough() -> None:
    rec = Record("src.jsonl", 3, ROWS[1])
    mapping = parse_field_map(["problem=question", " answer = answer "])
    view = map_fields(rec, PROBLEM_FIELDS, mapping)
    assert view["problem"] == "What is 1 + 1?" and view["answer"] == "2" and view["id"] == "q1"
    assert view["_extra"] == {"level": 1}
    missing = map_fields(rec, PROBLEM_FIELDS, {})
    assert isinstance(missing, RowError) and missing.field == "problem" and "missing field problem" in missing.reason
    assert (missing.source, missing.row) == ("src.jsonl", 3)


@pytest.mark.parametrize(
    "bad", [["problem"], ["problem=", "x"], ["=question"]], ids=["no-equals", "empty-column", "empty-name"]
)
def test_bad_field_maps_are_refused(bad) -> None:
    with pytest.raises(InputError, match="NAME=COLUMN"):
        parse_field_map(bad)


TYPED = [FieldSpec("problem", str), FieldSpec("steps", list, required=False), FieldSpec("k", int, required=False)]


def test_type_checks_accept_and_coerce() -> None:
    ok = map_fields(Record("s", 1, {"problem": 12, "steps": ["a"], "k": 3}), TYPED, {})
    assert ok["problem"] == "12" and ok["steps"] == ["a"] and ok["k"] == 3


@pytest.mark.parametrize(
    ("data", "column"),
    [
        ({"problem": ["x"]}, "problem"),
        ({"problem": True}, "problem"),
        ({"problem": "x", "steps": [1]}, "steps"),
        ({"problem": "x", "k": True}, "k"),
        ({"problem": {"a": 1}}, "problem"),
    ],
)
def test_type_checks_refuse_the_wrong_type(data, column) -> None:
    err = map_fields(Record("s", 4, data), TYPED, {})
    assert isinstance(err, RowError) and err.field == column and "must be" in err.reason


def test_bad_rows_become_row_errors_with_line_numbers(tmp_path: Path) -> None:
    lines = [
        json.dumps({"problem": "ok", "answer": "1"}),
        "{not json",
        "",
        json.dumps([1, 2]),
        json.dumps({"problem": "no answer"}),
        json.dumps({"problem": ["list"], "answer": "2"}),
        json.dumps({"problem": "ok2", "answer": 3}),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = []
    for rec in read_records(str(path)):
        out.append(rec if isinstance(rec, RowError) else validate_problem(rec, {}))
    kinds = [(type(o).__name__, getattr(o, "row", None), getattr(o, "reason", None)) for o in out]
    assert [k[0] for k in kinds] == ["Problem", "RowError", "RowError", "RowError", "RowError", "Problem"]
    errs = [o for o in out if isinstance(o, RowError)]
    assert [e.row for e in errs] == [2, 4, 5, 6]  # 1-based file lines; the blank line 3 is skipped, not an error
    assert "invalid JSON" in errs[0].reason and errs[0].raw == "{not json"
    assert "expected a JSON object, got list" in errs[1].reason
    assert "missing field answer" in errs[2].reason and errs[2].field == "answer"
    assert "must be a string" in errs[3].reason and errs[3].field == "problem"
    assert all(e.source == str(path) for e in errs)
    # an id-less row is named by its file's identity and its line: stable across builds (docs/annotators.md)
    assert out[-1].answer == "3" and re.fullmatch(r"mixed@[0-9a-f]{8}:7", out[-1].id)


def test_json_array_non_objects(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps([{"a": 1}, 5, "x"]))
    recs = list(read_records(str(tmp_path / "a.json")))
    assert isinstance(recs[0], Record) and [type(r) for r in recs[1:]] == [RowError, RowError]
    assert [r.row for r in recs] == [1, 2, 3]


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="input file not found: .*missing.jsonl"):
        check_input(str(tmp_path / "missing.jsonl"))


@pytest.mark.parametrize("relative", ["data/missing.jsonl", "out/problems.parquet", "a/b.jsonl.gz"])
def test_a_missing_relative_path_is_not_taken_for_a_hub_id(relative) -> None:
    with pytest.raises(InputError, match=f"input file not found: {relative}"):
        check_input(relative)


def _truncated_gzip(path: Path) -> None:
    with gzip.open(path, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in ROWS * 200)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BROKEN_FILES = {
    "bad.json": lambda p: p.write_text("[1, 2"),
    "bad.parquet": lambda p: p.write_bytes(b"PAR1 garbage"),
    "bad.arrow": lambda p: p.write_bytes(b"\x00" * 40),
    "bad.jsonl.gz": lambda p: p.write_bytes(b"not gzip at all"),
    "trunc.jsonl.gz": _truncated_gzip,
    "x.csv": lambda p: p.write_text("a,b\n"),
}


@pytest.mark.parametrize("name", list(BROKEN_FILES))
def test_unreadable_files_are_one_line_input_errors(tmp_path: Path, name: str) -> None:
    BROKEN_FILES[name](tmp_path / name)
    with pytest.raises(InputError) as info:
        list(read_records(str(tmp_path / name)))
    msg = str(info.value)
    assert name in msg and "\n" not in msg


def test_hub_id_offline_is_a_clean_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    check_input("no-such-org/no-such-dataset:test")  # looks like a hub id: accepted until read
    with pytest.raises(InputError) as info:
        list(read_records("no-such-org/no-such-dataset:test"))
    assert "no-such-org/no-such-dataset" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "spec", ["a.parquet", "a.arrow", "out", "a.jsonl"]
)  # JSON lines: non-blank lines, one pass over bytes
def test_row_counts_come_from_metadata_where_the_format_has_it(tmp_path, spec):
    """Partitioned runs size their slice without a counting pass over Parquet, Arrow or rsynth outputs."""
    from rsynth.data.readers import count_records
    from rsynth.data.schema import PROBLEM_SCHEMA
    from rsynth.data.shards import ShardSetWriter, write_arrow

    rows = [{"problem": f"p{i}", "answer": str(i)} for i in range(7)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    write_arrow(tmp_path / "a.arrow", rows, pa.Table.from_pylist(rows).schema)
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    w = ShardSetWriter(tmp_path / "out", {"data": PROBLEM_SCHEMA}, stage="t", run_key="k", shard_size=3)
    for i in range(7):
        w.add(
            "data",
            {
                "id": str(i),
                "domain": "math",
                "problem": "p",
                "reference_answer": "1",
                "gold_steps": [],
                "source": None,
                "metadata": None,
            },
            i,
        )
        w.input_done(i)
    w.close({})
    assert count_records(str(tmp_path / spec)) == len(list(read_records(str(tmp_path / spec)))) == 7
