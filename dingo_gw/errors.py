"""Exceptions that the command-line tools report as one clear error line."""


class DingoError(Exception):
    """Base class: a user-facing problem (bad input, bad file, bad config).

    Console scripts print ``error: <message>`` and exit with status 2 for these; anything
    else is a bug and shows a traceback.
    """


class ConfigError(DingoError):
    """A configuration file is malformed or holds a wrong key, type or value."""


class DataError(DingoError):
    """Strain, PSD or another input file is missing, corrupt, or unusable."""


class FileFormatError(DingoError):
    """A file written by dingo_gw is truncated, corrupt, or from an incompatible version."""


class DomainMismatchError(DingoError):
    """Two objects (e.g. a network and data) live on different frequency domains."""
