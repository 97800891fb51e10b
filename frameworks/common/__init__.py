"""Pieces the bundled frameworks share: offers -> placement, task builders, launch
backoff, an SSE broadcaster and how ``mesoslite up`` hosts a framework in-process.

Everything here is generic (no app or job concepts) and uses only the public
scheduler API (``mesoslite.scheduler``) and the placement engine.
"""
