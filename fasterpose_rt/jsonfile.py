"""Reading the JSON files users hand us (boxes, COCO annotations) with one-line errors instead of tracebacks."""
from __future__ import annotations

import json
import os
from typing import Any, Type


def load_json(path: os.PathLike, error: Type[Exception]) -> Any:
    """Parse the JSON file at ``path``; raise ``error`` naming the file and the reason when unreadable or invalid."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid JSON: {e}") from None
