"""The value types of the ``mfcy`` command's options (argparse ``type=`` callables).

Each turns the text a user typed into a value or raises
:class:`argparse.ArgumentTypeError` with what the option needs, which argparse
reports as the command's one-line usage error.
"""

from __future__ import annotations

import argparse
import math

def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _float_type(accept, requirement):
    """An argparse type: a finite float for which ``accept(value)`` holds."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}")
        return value
    return parse


_positive_float = _float_type(lambda v: v > 0, "a positive number")
_non_negative_float = _float_type(lambda v: v >= 0, "a number >= 0")


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}")
    return value


def _separator(text):
    # A shell passes "\t" as backslash + t: accept the escapes people type.
    named = {"tab": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|"}
    value = named.get(text.lower(), text.encode().decode("unicode_escape") if "\\" in text
                      else text)
    if not value:
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def _column_list(text):
    """'userId,movieId,rating' or '0,1,2' (names or 0-based positions)."""
    parts = [p.strip() for p in text.split(",")]
    if any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"expects comma-separated names or positions, "
                                         f"got {text!r}")
    return [int(p) if p.isdigit() else p for p in parts]
