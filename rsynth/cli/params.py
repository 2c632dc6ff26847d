"""Typer options generated from config dataclasses (`rsynth.config.param` fields).

`@with_configs(config=AnnotateParams, engine=(EngineParams, {"max_new_tokens": 2048}))` replaces the
command's `config` and `engine` parameters by one option per field, and calls the command with the
dataclass instances built from them (their `__post_init__` validates). Old option names declared
as `hidden_aliases` are extra hidden options whose value, when given, wins.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import MISSING
from typing import Any, Optional

import typer

from rsynth.config import build_config, params_of

Group = type | tuple[type, dict[str, Any]]


def _spec(group: Group) -> tuple[type, dict[str, Any]]:
    return group if isinstance(group, tuple) else (group, {})


def _alias_name(group: str, field_name: str, alias: str) -> str:
    return f"{group}__{field_name}__{alias.strip('-').replace('-', '_')}"


def _options(group: str, cls: type, overrides: dict[str, Any]) -> list[inspect.Parameter]:
    out = []
    for f, meta, typ in params_of(cls):
        if not meta["cli"]:
            continue
        default = overrides.get(f.name, f.default if f.default is not MISSING else ...)
        if meta["kind"] == "strs" and isinstance(default, str):
            default = [default]  # a repeatable option whose default is one value (recipes write it as a string)
        option = typer.Option(
            default, meta["flag"], *meta["aliases"], help=meta["help"] or None, envvar=meta["envvar"], show_envvar=False
        )
        out.append(
            inspect.Parameter(f"{group}__{f.name}", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=typ)
        )
        for alias in meta["hidden_aliases"]:
            out.append(
                inspect.Parameter(
                    _alias_name(group, f.name, alias),
                    inspect.Parameter.KEYWORD_ONLY,
                    default=typer.Option(None, alias, hidden=True),
                    annotation=Optional[typ],
                )
            )
    return out


def _build(group: str, cls: type, overrides: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    values = {}
    for f, meta, _ in params_of(cls):
        if not meta["cli"]:
            if f.name in overrides:
                values[f.name] = overrides[f.name]
            continue
        value = kwargs.pop(f"{group}__{f.name}")
        for alias in meta["hidden_aliases"]:
            old = kwargs.pop(_alias_name(group, f.name, alias))
            value = old if old is not None else value
        values[f.name] = value
    return build_config(cls, values)


def with_configs(**groups: Group) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Generate the options of the named config-dataclass parameters of a Typer command."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        params = [p for name, p in sig.parameters.items() if name not in groups]
        for name, group in groups.items():
            params += _options(name, *_spec(group))

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            for name, group in groups.items():
                kwargs[name] = _build(name, *_spec(group), kwargs)
            return fn(**kwargs)

        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.rsynth_configs = {
            name: _spec(group)[0] for name, group in groups.items()
        }  # read by tests/test_config.py
        return command

    return wrap
