"""Dataset cards for rsynth outputs: README.md with Hub metadata, provenance, counts, label plots."""
