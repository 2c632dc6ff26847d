"""Recipe files: parse, apply `--set` overrides, and validate everything before any stage runs.

A recipe::

    name: demo
    out: demo_out              # every stage writes OUT/<stage id>/
    license: apache-2.0        # for the dataset card
    defaults: {engine: hf}     # model/sampling keys applied to every stage that samples
    stages:
      - problems: {template: arithmetic, n: 8}
      - annotate-prm: {input: problems, k: 4}
      - card: {}

Every mistake is reported as one line naming the file, line and key, e.g.
``recipe.yaml:12: stages[2].annotate-prm: unknown key 'k00' (did you mean 'k0'?)``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsynth.errors import UserError
from rsynth.recipes.adapters import ENGINE_FIELDS, REQUIRED, STAGES, Field, StageKind, config_from
from rsynth.recipes.yamlload import LineDict, LineList, load_yaml, parse_value

TOP_KEYS = {"name": "str", "description": "str", "out": "str", "license": "str", "defaults": "map", "stages": "list"}
RANGE = re.compile(r"^\s*\d*\.?\d*\s*:\s*\d*\.?\d*\s*$")


@dataclass
class StageDef:
    id: str
    kind: StageKind
    params: dict[str, Any]  # every field of the kind, defaults filled in
    line: int
    input: str | None = None  # id of the earlier stage read, if any


@dataclass
class Recipe:
    path: Path
    name: str
    out: Path
    license: str
    description: str
    stages: list[StageDef] = field(default_factory=list)
    text: str = ""

    def stage(self, stage_id: str) -> StageDef:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise UserError(f"{self.path}: no stage {stage_id!r} (stages: {', '.join(s.id for s in self.stages)})")


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Where:
    """Formats `file:line: path: message` for one place in the recipe."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, line: int | None, where: str, message: str) -> UserError:
        loc = f"{self.path}:{line}" if line else str(self.path)
        return UserError(f"{loc}: {where + ': ' if where else ''}{message}")


def _type_ok(spec: Field, value: Any) -> bool:
    if value is None:
        return spec.default is None
    if spec.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec.kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if spec.kind == "bool":
        return isinstance(value, bool)
    if spec.kind == "range":
        return isinstance(value, str) and bool(RANGE.match(value))
    if spec.kind == "strs":
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    return isinstance(value, str)


_TYPE_NAMES = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "range": "a range LO:HI in [0, 1], e.g. '0.1:0.9'",
    "strs": "a string or a list of strings",
}


def _check_value(w: _Where, line: int, where: str, key: str, spec: Field, value: Any) -> None:
    if not _type_ok(spec, value):
        raise w.error(line, where, f"key '{key}' must be {_TYPE_NAMES[spec.kind]}, got {value!r}")
    if spec.choices and value not in spec.choices:
        raise w.error(
            line,
            where,
            f"key '{key}': {value!r} is not one of {', '.join(spec.choices)}{_suggest(value, spec.choices)}",
        )


def apply_overrides(doc: LineDict, sets: list[str]) -> None:
    """`--set stages.ID.KEY=VALUE`, `--set defaults.KEY=VALUE` or `--set out=DIR` (VALUE is YAML)."""
    for item in sets:
        target, sep, raw = item.partition("=")
        parts = target.strip().split(".")
        try:
            value = parse_value(raw)
        except Exception:
            raise UserError(f"--set {item}: the value is not valid YAML") from None
        if not sep or not parts[0]:
            raise UserError(f"--set {item}: expected KEY=VALUE, e.g. stages.solutions.model=/models/tiny")
        if parts[0] == "stages" and len(parts) == 3:
            node = _stage_body(doc, parts[1], item)
            node[parts[2]] = value
            node.lines.setdefault(parts[2], 0)
        elif parts[0] == "defaults" and len(parts) == 2:
            defaults = doc.get("defaults")
            if not isinstance(defaults, LineDict):
                defaults = LineDict()
                defaults.lines = {}
                doc["defaults"] = defaults
            defaults[parts[1]] = value
            defaults.lines.setdefault(parts[1], 0)
        elif len(parts) == 1 and parts[0] in TOP_KEYS:
            doc[parts[0]] = value
        else:
            raise UserError(
                f"--set {item}: expected stages.ID.KEY=VALUE, defaults.KEY=VALUE or one of {', '.join(TOP_KEYS)}"
            )


def _stage_body(doc: LineDict, stage_id: str, item: str) -> LineDict:
    ids = []
    for entry in doc.get("stages") or []:
        if isinstance(entry, dict) and len(entry) == 1:
            kind, body = next(iter(entry.items()))
            body = body if isinstance(body, LineDict) else None
            sid = (body or {}).get("id") or kind
            ids.append(sid)
            if sid == stage_id and body is not None:
                return body
            if sid == stage_id:
                fresh = LineDict()
                fresh.lines = {}
                entry[kind] = fresh
                return fresh
    raise UserError(
        f"--set {item}: no stage with id {stage_id!r}{_suggest(stage_id, ids)} (stages: {', '.join(map(str, ids))})"
    )


def load_recipe(path: Path, sets: list[str] = ()) -> Recipe:
    """Parse and fully validate a recipe file; raises `UserError` with file:line for any mistake."""
    doc = load_yaml(path)
    w = _Where(path)
    if not isinstance(doc, LineDict):
        raise w.error(1, "", "a recipe is a mapping with a 'stages' list")
    apply_overrides(doc, list(sets))
    for key, value in doc.items():
        line = doc.lines.get(key)
        if key not in TOP_KEYS:
            raise w.error(line, "", f"unknown key '{key}'{_suggest(key, TOP_KEYS)}")
        want = TOP_KEYS[key]
        if (
            (want == "str" and not isinstance(value, str))
            or (want == "map" and not isinstance(value, dict))
            or (want == "list" and not isinstance(value, list))
        ):
            raise w.error(
                line,
                "",
                f"key '{key}' must be {'a mapping' if want == 'map' else 'a list' if want == 'list' else 'a string'}",
            )
    if "stages" not in doc or not doc["stages"]:
        raise w.error(doc.line, "", "missing key 'stages' (a list of stages)")
    defaults = _check_defaults(w, doc.get("defaults") or LineDict())
    recipe = Recipe(
        path=path,
        name=doc.get("name") or path.stem,
        out=Path(doc.get("out") or f"{path.stem}_out"),
        license=doc.get("license") or "other",
        description=doc.get("description") or "",
        text=_effective_text(path, doc, sets),
    )
    stages: LineList = doc["stages"]
    for i, entry in enumerate(stages):
        recipe.stages.append(
            _stage(
                w,
                i,
                stages.lines[i] if isinstance(stages, LineList) else doc.lines["stages"],
                entry,
                defaults,
                recipe.stages,
            )
        )
    return recipe


def _effective_text(path: Path, doc: LineDict, sets: list[str]) -> str:
    """The recipe as run: the file itself, or, with --set, the overridden document (the card and
    build.json must describe what ran, not what the file says)."""
    if not sets:
        return path.read_text()
    import yaml

    from rsynth.recipes.yamlload import plain

    header = f"# {path} with --set {' --set '.join(sets)}\n"
    return header + yaml.safe_dump(plain(doc), sort_keys=False, allow_unicode=True)


def _check_defaults(w: _Where, defaults: LineDict) -> dict[str, Any]:
    for key, value in defaults.items():
        line = defaults.lines.get(key) if isinstance(defaults, LineDict) else None
        if key not in ENGINE_FIELDS:
            raise w.error(
                line,
                "defaults",
                f"unknown key '{key}'{_suggest(key, ENGINE_FIELDS)} (defaults hold model and sampling keys)",
            )
        _check_value(w, line, "defaults", key, ENGINE_FIELDS[key], value)
    return dict(defaults)


def _stage(w: _Where, i: int, line: int, entry: Any, defaults: dict[str, Any], earlier: list[StageDef]) -> StageDef:
    where = f"stages[{i}]"
    if not isinstance(entry, dict) or len(entry) != 1:
        raise w.error(line, where, "each stage is a one-key mapping: KIND: {key: value, ...}")
    name, body = next(iter(entry.items()))
    if name not in STAGES:
        raise w.error(line, where, f"unknown stage '{name}'{_suggest(name, STAGES)} (stages: {', '.join(STAGES)})")
    kind = STAGES[name]
    where = f"{where}.{name}"
    if body is None:
        body = LineDict()
        body.lines = {}
    if not isinstance(body, dict):
        raise w.error(line, where, "expected a mapping of keys (use {} for none)")
    lines = getattr(body, "lines", {})
    for key in body:
        if key not in kind.fields:
            raise w.error(lines.get(key) or line, where, f"unknown key '{key}'{_suggest(key, kind.fields)}")
    params: dict[str, Any] = {}
    for key, spec in kind.fields.items():
        if key in body:
            value = body[key]
            _check_value(w, lines.get(key) or line, where, key, spec, value)
        elif key in defaults:
            value = defaults[key]
        elif spec.default is REQUIRED:
            raise w.error(getattr(body, "line", 0) or line, where, f"missing key '{key}' ({spec.help or spec.kind})")
        else:
            value = list(spec.default) if isinstance(spec.default, list) else spec.default
        params[key] = value
    for cls in kind.configs:  # the run's own validation, at plan time: a bad combination fails before any stage runs
        try:
            config_from(cls, params)
        except UserError as exc:
            raise w.error(getattr(body, "line", 0) or line, where, str(exc)) from None
    sid = params.get("id") or name
    if any(s.id == sid for s in earlier):
        raise w.error(lines.get("id") or line, where, f"stage id '{sid}' is used twice; give this stage an 'id'")
    stage = StageDef(sid, kind, params, line)
    if kind.reads_input:
        ref, source = params.get("input"), params.get("source")
        if (ref is None) == (source is None):
            raise w.error(
                getattr(body, "line", 0) or line,
                where,
                "give exactly one of 'input' (the id of an earlier stage) or 'source' (a file, directory or hub id)",
            )
        if ref is not None:
            ids = [s.id for s in earlier]
            if ref not in ids:
                hint = _suggest(ref, ids) or f" (earlier stages: {', '.join(ids) or 'none'})"
                raise w.error(
                    lines.get("input") or line, where, f"input '{ref}' is not produced by an earlier stage{hint}"
                )
            stage.input = ref
    return stage
