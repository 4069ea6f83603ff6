"""Reading the JSON files users hand us (boxes, COCO annotations) with one-line errors instead of tracebacks."""
from __future__ import annotations

import json
import math
import os
from typing import Any, Sequence, Type

_NUMBER_TYPES = {int, float}


def load_json(path: os.PathLike, error: Type[Exception]) -> Any:
    """Parse the JSON file at ``path``; raise ``error`` naming the file and the reason when unreadable or invalid."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror or e}") from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise error(f"{path}: not valid JSON here: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer of more digits than Python converts
        why = "it holds an integer thousands of digits long" if "integer string conversion" in str(e) else str(e)
        raise error(f"{path}: not valid JSON: {why}") from None


def finite_number(v: Any) -> bool:
    """A finite JSON number: an int or float (not a bool) that float64 holds (JSON integers may be any size; Python's
    json reads NaN and Infinity)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def finite_numbers(values: Sequence) -> bool:
    """``finite_number`` of every value, fast for the long lists of a big annotation file: exact types checked at
    once, then one sum (NaN or an infinity anywhere makes it non-finite or raises)."""
    if not set(map(type, values)) <= _NUMBER_TYPES:  # exact types: a bool is no number here
        return False
    try:
        return math.isfinite(math.fsum(values))
    except (OverflowError, ValueError):  # a huge int; inf and -inf together
        return all(finite_number(v) for v in values)
