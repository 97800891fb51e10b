"""Lets the tests import ``alloc_model`` (the naive reference allocator) next to them,
whatever pytest's import mode."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
