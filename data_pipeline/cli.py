"""What every command line of the project shares: bad input is one `error:` line and exit status 2.

Each entry point runs `app.run(main, flags_parser=cli.parse_flags)` and
starts `main` with `cli.no_arguments(argv)`.
"""

import sys

from absl import flags


def fail(message):
    """Prints `error: <message>` on stderr and exits with status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_flags(argv):
    """absl's flag parsing for `app.run`, a bad flag reported by `fail` rather than with a usage dump."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        fail(error)


def no_arguments(argv):
    """Refuses positional arguments: the jobs take flags only."""
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
