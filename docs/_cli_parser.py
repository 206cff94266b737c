"""The ``mfcy`` command's argparse parser, prepared for the sphinx-argparse reference.

sphinx-argparse renders help texts as reStructuredText, where a backslash is an
escape (``'\\t'`` would print as ``'t'``); the terminal's ``--help`` shows them
as written. This copy of the parser escapes them, and states each option's
default in its help text (the reference is built with ``:nodefault:``, so a
default that the help already names is not repeated on a line of its own).
"""

import argparse

from mfcy.cli import build_parser


def _prepare(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _prepare(sub)
            for choice in action._choices_actions:
                choice.help = choice.help.replace("\\", "\\\\") if choice.help else choice.help
            continue
        if not action.help or action.help == argparse.SUPPRESS:
            continue
        action.help = action.help.replace("\\", "\\\\")
        default = action.default
        if (default not in (None, False, argparse.SUPPRESS) and action.option_strings
                and "default" not in action.help):
            action.help += f" (default {default!r})" if isinstance(default, str) else (
                f" (default {default})")
    for name in ("description", "epilog"):
        text = getattr(parser, name)
        if text:
            setattr(parser, name, text.replace("\\", "\\\\"))
    return parser


def parser():
    """mfcy's parser, its help texts escaped for reStructuredText."""
    return _prepare(build_parser())
