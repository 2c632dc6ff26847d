"""Benchmark decontamination and deduplication: normalise, index, match, route (see docs/decontaminate.md)."""
