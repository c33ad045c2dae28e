"""The ``smartdownsample`` command: ``select``, ``balance``, ``demo`` and ``cache``.

``main(argv)`` parses the arguments, runs the subcommand and returns the
exit code: 0 done, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C), 143
stopped by SIGTERM, 129 by SIGHUP (128 + the signal number, as shells report;
these signals are handled like Ctrl-C: every output is rolled back). Errors
are one line on stderr naming the bad path or value and the fix; ``--debug``
adds the traceback. Progress bars and log messages go to stderr; selected
paths go to stdout (or ``--out``), the summary to stdout (to stderr when the
paths are on stdout, so pipes get only paths).

All output files of a run are staged and put in place together at the end
(:class:`~smartdownsample.outputs.OutputTransaction`): a failed or
interrupted run leaves none of them behind. Input images are never written.

The modules, from the outside in: :mod:`._main` (``main``: errors, signals,
messages), :mod:`._parser` (the parser), one module per subcommand
(:mod:`.select`, :mod:`.balance`, :mod:`.demo`, :mod:`.cache`), and what they
share: :mod:`._options` (flags and their types), :mod:`._settings` (what the
flags mean), :mod:`._run` (running the library), :mod:`._outputs` (output
files and printing), :mod:`._report` (the JSON reports).
"""

from __future__ import annotations

from ._errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CommandError
from ._main import in_flag_words, main
from ._parser import build_parser
from ._settings import CACHE_ENV, default_cache_path, resolve_target

__all__ = [
    "CACHE_ENV",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "build_parser",
    "default_cache_path",
    "in_flag_words",
    "main",
    "resolve_target",
]
