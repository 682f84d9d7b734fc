"""Exercises that check the reader's own code and name the mistake.

``EXERCISES`` maps a name to an :class:`~fmedu.exercises.core.Exercise` with ``chapter``,
``check(fn)`` (prints a one-or-two-sentence verdict and returns a
:class:`~fmedu.exercises.core.CheckResult` with ``correct``, ``message`` and the matched
``variant``), ``hint()``, ``solution()`` (the reference function) and ``variants`` (name → a
catalogued wrong function with its diagnosis). In a chapter::

    from fmedu.exercises import EXERCISES
    q = EXERCISES["rendle_pairwise"]

    def rendle_pairwise(x, V):
        raise NotImplementedError  # your code here

    q.check(rendle_pairwise).correct   # "not yet written" until the body is filled in

``catch_table(chapter)`` runs every check of a chapter that takes a candidate function against
every catalogued wrong variant (and the reference) and says which check catches which.
"""

from . import catalogue as _catalogue  # noqa: F401  (registers the exercises)
from .catch import PENDING_SECOND_YOUR_TURN, catch_table, every_check_catches, format_catch_table
from .core import EXERCISES, NOT_WRITTEN, CheckResult, Exercise, Variant

__all__ = [
    "EXERCISES",
    "NOT_WRITTEN",
    "PENDING_SECOND_YOUR_TURN",
    "CheckResult",
    "Exercise",
    "Variant",
    "catch_table",
    "every_check_catches",
    "for_chapter",
    "format_catch_table",
]


def for_chapter(chapter: str) -> dict[str, Exercise]:
    """The exercises of one chapter (``"01"`` … ``"07"``), by name."""
    return {name: ex for name, ex in EXERCISES.items() if ex.chapter == chapter}
