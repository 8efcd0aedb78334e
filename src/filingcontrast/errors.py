"""User-facing errors. The CLI prints their message on one line and exits non-zero.

Raise `UserError` for a user mistake (bad file, bad field, missing artifact): the message must name
the file, line or field and say what is wrong. Raise `ConfigError` for a bad config key or value:
the CLI exits 2 for it. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit code 1."""

    exit_code = 1


class ConfigError(UserError):
    """A bad config key, type or value: printed as one line, exit code 2."""

    exit_code = 2
