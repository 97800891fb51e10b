"""Pieces the bundled frameworks share besides the framework kit (``mesoslite.framework``,
the offer cycle): task builders, secret references, an SSE broadcaster and how
``mesoslite up`` hosts a framework in-process.

Everything here is generic (no app or job concepts) and uses only the public
scheduler API (``mesoslite.scheduler``).
"""
