"""The services framework: Marathon-compatible long-running apps on mesoslite.

See docs/services.md.  ``frameworks.services.server.run_services`` runs it;
``mesoslite services`` and ``mesoslite up`` are the usual ways in.
"""
