"""Building an engine from command-line or recipe choices."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rsynth.engines.base import Engine

ENGINES = ("auto", "hf", "vllm", "openai")


def pick_engine(name: str) -> str:
    """`auto` means vLLM when it is importable and a GPU is present, else transformers."""
    if name != "auto":
        return name
    from rsynth.engines.vllm import cuda_available

    return "vllm" if importlib.util.find_spec("vllm") is not None and cuda_available() else "hf"


def make_engine(name: str, model: str | None, **options) -> Engine:
    from rsynth.engines.default_model import DEFAULT_MODEL, is_default, resolve_model
    from rsynth.errors import UserError, require

    if name not in ENGINES:
        raise UserError(f"--engine {name!r}: expected one of {', '.join(ENGINES)}")
    name = pick_engine(name)
    if name == "openai":
        from rsynth.engines.openai import OpenAIEngine

        if not model:
            raise UserError("--engine openai needs --model (the model name the server serves)")
        kw = {k: v for k, v in options.items() if k in {"base_url", "api_key", "concurrency", "timeout", "max_retries"}}
        urls = [kw["base_url"]] if isinstance(kw.get("base_url"), str) else list(kw.get("base_url") or [])
        if len(urls) > 1 or options.get("endpoints"):
            from rsynth.engines.fleet import FleetEngine

            kw.pop("base_url", None)
            return FleetEngine(model, base_urls=urls, endpoints=options.get("endpoints"), **kw)
        if urls:
            kw["base_url"] = urls[0]
        return OpenAIEngine(model, **kw)
    if name == "vllm":
        from rsynth.engines.vllm import VLLMEngine

        engine: Engine = VLLMEngine(resolve_model(model))
    else:
        require("transformers", feature="the hf engine", extra="hf")
        from rsynth.engines.hf import HFEngine

        kw = {k: v for k, v in options.items() if k in {"batch_rows", "device"}}
        engine = HFEngine(resolve_model(model), **kw)
    if is_default(model):
        engine.model = DEFAULT_MODEL  # provenance and cache keys name the model, not a cache path
    return engine


def build_engine(
    engine: str,
    model: str | None,
    *,
    base_url: str | list[str],
    api_key: str | None,
    concurrency: int,
    batch_rows: int,
    cache: Path | None,
    timeout: float = 600.0,
    max_retries: int = 5,
    endpoints: str | None = None,
) -> Engine:
    """Make the engine, wrapped in the on-disk completion cache when `cache` is given; several base
    URLs or an endpoints file make a fleet (rsynth.engines.fleet)."""
    from rsynth.engines.cache import CachedEngine

    built = make_engine(
        engine,
        model,
        base_url=base_url,
        api_key=api_key,
        concurrency=concurrency,
        batch_rows=batch_rows,
        timeout=timeout,
        max_retries=max_retries,
        endpoints=endpoints,
    )
    return CachedEngine(built, cache) if cache is not None else built
