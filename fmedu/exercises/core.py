"""The machinery behind "your turn" exercises: run the chapter's evidence on a reader's function.

An :class:`Exercise` knows the function the reader is asked to write (its signature and task),
a reference solution, the *evidence* a chapter uses to check such a function (the definition
it must agree with: a double sum, autograd, an eigenvalue criterion, an exact rank), a list of
test cases ordered from the smallest up, and a catalogue of wrong variants, each with the
diagnosis a reader should read when their function behaves like it.

``exercise.check(fn)`` runs the evidence on ``fn`` and answers in one or two sentences:

* correct, with what was checked;
* wrong, naming the mistake when ``fn`` agrees with a catalogued variant on every case;
* wrong, with the smallest failing case, the expected and the actual value otherwise;
* "not yet written" when ``fn`` is the stub (it raises :class:`NotImplementedError`);
* a message about the reader's code when it raises or returns the wrong shape or type.

The evidence never calls the reference solution: the reference is one more function that must
pass it (``tests/test_exercises.py`` checks that it does, and that every variant fails).
"""

from __future__ import annotations

import inspect
import math
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
import torch

__all__ = ["CheckResult", "Variant", "Case", "Exercise", "NOT_WRITTEN", "EXERCISES", "register", "describe"]

NOT_WRITTEN = "not yet written"


@dataclass(frozen=True)
class CheckResult:
    """The answer of :meth:`Exercise.check`: ``correct``, the one-or-two-sentence ``message``,
    and the name of the catalogued wrong ``variant`` the function matched (or None)."""

    correct: bool
    message: str
    variant: str | None = None

    def __bool__(self) -> bool:
        return self.correct


@dataclass(frozen=True)
class Variant:
    """A wrong function from the catalogue and what to tell a reader whose function behaves like it."""

    fn: Callable
    diagnosis: str
    source: str = "a common slip"  # "erratum E1", "a common slip", ...


@dataclass(frozen=True)
class Case:
    """One input of the evidence: ``args`` for the reader's function and ``expected``, the value
    the evidence demands (computed independently of any solution), with a short ``label``."""

    args: tuple
    expected: Any
    label: str


def describe(value: Any, digits: int = 6) -> str:
    """A short, readable rendering of a case's input or output for a feedback message."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        with np.printoptions(precision=digits, suppress=True, linewidth=100, threshold=20):
            text = np.array2string(value, separator=", ")
        return text if value.ndim else text
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(describe(v, digits) for v in value) + ")"
    return str(value)


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().to(torch.float64).numpy()
    if isinstance(value, sp.MatrixBase):
        return np.array(value.evalf(), dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


def _copy_args(args: tuple) -> tuple:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else (a.copy() if hasattr(a, "copy") else a) for a in args)


@dataclass
class Exercise:
    """One "your turn" exercise.

    ``cases()`` returns the evidence's cases, smallest first; ``agree(expected, actual, case)``
    says whether an output passes (exact for integers and booleans, within a stated rounding
    tolerance for floats); ``evidence`` names, in words, what the check runs.
    """

    name: str
    chapter: str
    signature: str
    task: str
    evidence: str
    hint_text: str
    reference: Callable
    cases: Callable[[], Sequence[Case]]
    agree: Callable[[Any, Any, Case], bool]
    variants: dict[str, Variant] = field(default_factory=dict)
    output: str = "a value"  # what the function returns, for type/shape messages
    shape: Callable[[Case], tuple[int, ...] | None] | None = None

    # ----------------------------------------------------------------- the reader's side
    def hint(self) -> str:
        """Print and return the hint."""
        print(self.hint_text)
        return self.hint_text

    def solution(self) -> Callable:
        """Print the reference solution's source and return the function."""
        try:
            print(inspect.getsource(self.reference))
        except (OSError, TypeError):  # pragma: no cover - source unavailable
            pass
        return self.reference

    def check(self, fn: Callable | None, *, quiet: bool = False) -> CheckResult:
        """Run the evidence on ``fn`` and print the verdict (unless ``quiet``)."""
        result = self._check(fn)
        if not quiet:
            print(result.message)
        return result

    # ----------------------------------------------------------------- the evidence
    def _outputs(self, fn: Callable, cases: Sequence[Case]) -> list[Any]:
        return [fn(*_copy_args(case.args)) for case in cases]

    def _shape_problem(self, out: Any, case: Case) -> str | None:
        if self.shape is None:
            return None
        want = self.shape(case)
        if want is None:
            return None
        try:
            got = tuple(np.shape(_as_array(out)))
        except (TypeError, ValueError):
            return f"it returned {type(out).__name__}, which is not {self.output}"
        if got != tuple(want):
            return f"it returned shape {got} where {self.output} of shape {tuple(want)} was expected"
        return None

    def _agrees(self, expected: Any, actual: Any, case: Case) -> bool:
        try:
            return bool(self.agree(expected, actual, case))
        except (TypeError, ValueError, RuntimeError):
            return False

    def _check(self, fn: Callable | None) -> CheckResult:
        head = f"{self.name} (chapter {self.chapter})"
        if fn is None or not callable(fn):
            return CheckResult(False, f"{head}: {NOT_WRITTEN}. Write {self.signature} and call check again.")
        cases = list(self.cases())
        actual: list[Any] = []
        for case in cases:
            try:
                out = fn(*_copy_args(case.args))
            except NotImplementedError:
                return CheckResult(False, f"{head}: {NOT_WRITTEN}. Replace the stub's body: {self.task}")
            except Exception as exc:  # the reader's code: report it, not a traceback through fmedu
                where = traceback.extract_tb(exc.__traceback__)[-1]
                return CheckResult(
                    False,
                    f"{head}: your function raised {type(exc).__name__}: {exc} (line {where.lineno} of your code) "
                    f"on the case {case.label}, input {describe(case.args)}.",
                )
            problem = self._shape_problem(out, case)
            if problem:
                return CheckResult(False, f"{head}: on the case {case.label}, {problem}. {self.task}")
            actual.append(out)
        failing = [i for i, case in enumerate(cases) if not self._agrees(case.expected, actual[i], case)]
        if not failing:
            return CheckResult(True, f"{head}: correct. Checked on {len(cases)} cases against {self.evidence}.")
        for vname, variant in self.variants.items():
            try:
                outs = self._outputs(variant.fn, cases)
            except Exception:  # a variant that cannot run on a case cannot be matched
                continue
            if all(self._agrees(outs[i], actual[i], case) for i, case in enumerate(cases)):
                return CheckResult(False, f"{head}: wrong. {variant.diagnosis}", vname)
        i = failing[0]
        case = cases[i]
        return CheckResult(
            False,
            f"{head}: wrong on {len(failing)} of {len(cases)} cases. The smallest failing case is "
            f"{case.label}, input {describe(case.args)}: expected {describe(_maybe_array(case.expected))}, "
            f"got {describe(_maybe_array(actual[i]))}.",
        )


def _maybe_array(value: Any) -> Any:
    if isinstance(value, (bool, int, np.integer, np.bool_)) or value is None:
        return value
    try:
        arr = _as_array(value)
    except (TypeError, ValueError):
        return value
    return float(arr) if arr.ndim == 0 else arr


EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    if exercise.name in EXERCISES:
        raise ValueError(f"exercise {exercise.name!r} is registered twice")
    EXERCISES[exercise.name] = exercise
    return exercise


def close(rtol: float, atol: float = 0.0) -> Callable[[Any, Any, Case], bool]:
    """Agreement of floating outputs within ``atol + rtol·|expected|`` entrywise, same shape."""

    def agree(expected: Any, actual: Any, case: Case) -> bool:
        e, a = _as_array(expected), _as_array(actual)
        if e.shape != a.shape or not np.all(np.isfinite(a)) == np.all(np.isfinite(e)):
            return False
        finite = np.isfinite(e)
        if not np.array_equal(e[~finite], a[~finite]):
            return False
        return bool(np.all(np.abs(e[finite] - a[finite]) <= atol + rtol * np.abs(e[finite])))

    return agree


def exactly(expected: Any, actual: Any, case: Case) -> bool:
    """Agreement of integers or booleans: equal values of the same kind (True is not 1)."""
    if isinstance(expected, (bool, np.bool_)):
        return isinstance(actual, (bool, np.bool_)) and bool(actual) == bool(expected)
    if isinstance(actual, (bool, np.bool_)):
        return False
    if isinstance(actual, torch.Tensor) and actual.numel() == 1:
        actual = actual.item()
    try:
        return int(actual) == int(expected) and float(actual) == float(expected)
    except (TypeError, ValueError, OverflowError):
        return False


def inf_or_close(rtol: float) -> Callable[[Any, Any, Case], bool]:
    """Like :func:`close` for scalars, with ``math.inf`` matched exactly."""

    def agree(expected: Any, actual: Any, case: Case) -> bool:
        e, a = float(expected), float(actual)
        if math.isinf(e) or math.isinf(a):
            return e == a
        return abs(e - a) <= rtol * abs(e)

    return agree
