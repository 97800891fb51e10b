"""YAML input that cannot blow up: safe types only, and bounded aliases and depth.

PyYAML's ``safe_load`` already refuses arbitrary objects, but a "billion laughs"
document (aliases of aliases) builds a structure whose expansion is exponential:
anything that walks it (validation, JSON encoding) runs out of memory.  This loader
refuses documents with more than ``MAX_ALIASES`` aliases or nested deeper than
``MAX_DEPTH``, with a message naming the line.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_ALIASES = 100
MAX_DEPTH = 64


class YamlLimitError(yaml.YAMLError):
    """The document exceeds a limit; the text says which and where."""


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise YamlLimitError(f"more than {MAX_ALIASES} aliases (line {mark.line + 1})")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimitError(f"nested deeper than {MAX_DEPTH} levels "
                                     f"(line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load(text: str) -> Any:
    """One document (like ``yaml.safe_load``), within the limits."""
    return yaml.load(text, Loader=_BoundedLoader)


def load_all(text: str) -> list[Any]:
    """Every document of a multi-document stream, within the limits (per document)."""
    return list(yaml.load_all(text, Loader=_BoundedLoader))
