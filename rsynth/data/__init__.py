"""The data layer: the Arrow schemas, shard I/O with atomic writes and resume, and input readers."""
