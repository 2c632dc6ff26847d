"""rsynth: build step-labelled reasoning training data."""

__version__ = "0.1.0"
