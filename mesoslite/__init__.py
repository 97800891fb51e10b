"""mesoslite: a small two-level cluster manager in the Apache Mesos mould."""

__version__ = "0.1.0"
