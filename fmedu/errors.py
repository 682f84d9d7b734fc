"""The package's exceptions: one hierarchy, so that ``except fmedu.FMError`` catches them all.

Every message says what was wrong and how to fix it.
"""

from __future__ import annotations

__all__ = ["FMError", "FMInputError", "DataError", "ResultsError"]


class FMError(Exception):
    """Base class of every error fmedu raises on purpose."""


class FMInputError(FMError, ValueError):
    """Malformed input: shapes, dtypes, indices, non-finite values, labels, step sizes, options."""


class DataError(FMError, RuntimeError):
    """The MovieLens data could not be found, downloaded or verified."""


class ResultsError(FMInputError):
    """An existing results file does not belong to this configuration, or is damaged."""
