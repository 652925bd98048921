"""One way for every command-line tool to report bad input: ``error: <what>`` on stderr, exit 2.

The library raises ``FileNotFoundError`` / ``ValueError`` (``ConfigError`` is one) whose messages
name the file, record or argument; a user should read that one line, not a traceback. A traceback
is still printed with ``MOTIONGPT_TRACEBACK=1`` (for bug reports), and every other exception (a
bug, not bad input) keeps its traceback.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

__all__ = ["USER_ERRORS", "run_cli"]

USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, NotADirectoryError, IsADirectoryError,
                                                 PermissionError, ValueError, json.JSONDecodeError)
"""Exceptions that mean the input (a path, a file's content, an option) is wrong."""


def run_cli(main: Callable[..., Any], argv: list[str] | None = None,
            errors: tuple[type[BaseException], ...] = ()) -> int:
    """Call ``main(argv)``; a user error (:data:`USER_ERRORS`, or one of ``errors``: a tool's own,
    e.g. a download that failed) becomes one ``error:`` line and exit status 2; an int result is
    the exit status, anything else 0."""
    try:
        result = main(argv)
    except USER_ERRORS + tuple(errors) as e:
        if os.environ.get("MOTIONGPT_TRACEBACK") == "1":
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
