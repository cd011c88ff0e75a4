"""Where the model store lives: $UNIFIED_NLP_HOME, else ~/.cache/unified_nlp.

Its own module because every layer needs the answer (atomic writes name it in their
errors, the content keys and the store keep their files there) and it needs nothing.
"""

from __future__ import annotations

import os
from pathlib import Path


def store_dir() -> Path:
    """Where derived models are kept: $UNIFIED_NLP_HOME, else ~/.cache/unified_nlp (one store
    for every checkout and environment of this user, as Hugging Face's cache is)."""
    return Path(os.environ.get("UNIFIED_NLP_HOME") or Path.home() / ".cache" / "unified_nlp")


def store_origin() -> str:
    """Why the store is where it is, for `unified-nlp cache list`."""
    if os.environ.get("UNIFIED_NLP_HOME"):
        return "set by UNIFIED_NLP_HOME"
    return "the default; set UNIFIED_NLP_HOME to move it"
