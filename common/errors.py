"""One error type for everything a user can fix.

:class:`EmorecError` and its subclasses mean "the input, the configuration, a saved artifact or
the workspace is not as it should be": the command line prints their message on one line and
exits with code 2. Any other exception is a bug in emorec: the command line exits with code 1
and prints the traceback (always with ``-v``, else with a hint to rerun with ``-v``).

``InputError`` and ``ConfigError`` are also ``ValueError`` (so pydantic validators may raise them
and callers that catch ``ValueError`` keep working); ``ArtifactError`` and ``WorkspaceError`` are
also ``RuntimeError``.
"""

from __future__ import annotations


class EmorecError(Exception):
    """A problem the user can fix; the message says which record, field, file or setting."""

    #: Exit code of the command line for this error.
    exit_code = 2


class InputError(EmorecError, ValueError):
    """Input data is unusable: a missing column, a bad record, an empty file, a shop the chosen
    model cannot learn from."""


class ConfigError(EmorecError, ValueError):
    """A configuration is invalid: an unknown parameter, a value out of range, a conflict."""


class ArtifactError(EmorecError, RuntimeError):
    """A saved model or other artifact is missing, corrupt, tampered with or of an unknown kind."""


class WorkspaceError(EmorecError, RuntimeError):
    """The workspace cannot be used: missing tables, a lock held by another process, a full disk,
    a path that leads outside it."""


class NothingToLearnError(InputError):
    """A model found nothing to learn from in this data (e.g. the hybrid in a shop where nobody
    wrote a second review). ``--model auto`` falls back to a simpler model on this error only."""


__all__ = ["ArtifactError", "ConfigError", "EmorecError", "InputError", "NothingToLearnError", "WorkspaceError"]
