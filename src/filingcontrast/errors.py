"""User-facing errors. The CLI prints their message on one line and exits non-zero.

Raise `UserError` for a user mistake (bad file, bad field, missing artifact): the message must name
the file, line or field and say what is wrong. Raise `ConfigError` for a bad config key or value:
the CLI exits 2 for it. Anything else is a bug and keeps its traceback.
"""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name if it has none): what
    a one-line error keeps of a library's multi-line message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit code 1."""

    exit_code = 1


class CheckpointError(UserError):
    """A training checkpoint that cannot be resumed (damaged, or made with other settings)."""


class ConfigError(UserError):
    """A bad config key, type or value: printed as one line, exit code 2."""

    exit_code = 2
