"""Reading kind-specific simulation parameters with one clear error per bad value.

The JSON schema cannot say which keys each ``kind`` takes, so every kind reads its ``params``
through :class:`Params`, which rejects unknown keys and bad values with a
:class:`~workflow_lib.errors.ParamError` naming the key within ``params`` (the workflow layer
adds the config path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workflow_lib.errors import ParamError


class Params:
    """Typed, validated access to one simulation's ``params`` mapping."""

    def __init__(self, params: Mapping[str, Any] | None, allowed: Sequence[str] | None = None):
        """``allowed``: every key the kind knows; others are refused at once, before any work."""
        self._params = dict(params or {})
        self._used: set[str] = set()
        if allowed is not None:
            unknown = sorted(set(self._params) - set(allowed))
            if unknown:
                raise ParamError(
                    unknown[0], f"unknown parameter; this kind takes: {', '.join(sorted(allowed))}"
                )

    def _get(self, name: str, default: Any) -> Any:
        self._used.add(name)
        return self._params.get(name, default)

    def number(
        self,
        name: str,
        default: float,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        integer: bool = False,
    ) -> float:
        """A scalar in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
        value = self._get(name, default)
        return self._check_scalar(name, value, low, high, low_open, integer)

    def optional_number(
        self, name: str, low: float | None = None, high: float | None = None,
        low_open: bool = False, integer: bool = False,
    ) -> float | None:
        """Like :meth:`number`, but None when ``name`` is absent: for a default that depends on
        what is simulated."""
        self._used.add(name)
        if name not in self._params:
            return None
        return self._check_scalar(name, self._params[name], low, high, low_open, integer)

    def _check_scalar(self, name, value, low, high, low_open, integer):
        kind = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(name, f"must be {kind}, got {value!r}")
        if integer and int(value) != value:
            raise ParamError(name, f"must be {kind}, got {value!r}")
        if low is not None and (value <= low if low_open else value < low):
            raise ParamError(name, f"must be {'>' if low_open else '>='} {low}, got {value!r}")
        if high is not None and value > high:
            raise ParamError(name, f"must be <= {high}, got {value!r}")
        return int(value) if integer else float(value)

    def range(
        self,
        name: str,
        default: float | Sequence[float],
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        integer: bool = False,
    ) -> tuple[float, float]:
        """A ``[min, max]`` pair (a single number means ``[x, x]``), each in the bounds."""
        value = self._get(name, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value, value]
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ParamError(name, f"must be a number or a [min, max] pair, got {value!r}")
        lo, hi = (self._check_scalar(name, v, low, high, low_open, integer) for v in value)
        if lo > hi:
            raise ParamError(name, f"min ({lo}) must be <= max ({hi})")
        return lo, hi

    def vector(
        self, name: str, default: Sequence[float], length: int, low: float | None = None,
        low_open: bool = False,
    ) -> tuple[float, ...]:
        """A list of ``length`` numbers (one number is repeated)."""
        value = self._get(name, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value] * length
        if not isinstance(value, (list, tuple)) or len(value) != length:
            raise ParamError(name, f"must be a number or a list of {length} numbers, got {value!r}")
        return tuple(self._check_scalar(name, v, low, None, low_open, False) for v in value)

    def __contains__(self, name: str) -> bool:
        """Whether ``name`` was given (explicitly, not by a default)."""
        return name in self._params

    def samples(self, name: str, low: float | None = None) -> tuple[float, ...] | None:
        """An empirical distribution: a non-empty list of numbers to draw from (None if unset)."""
        value = self._get(name, None)
        if value is None:
            return None
        if not isinstance(value, (list, tuple)) or not value:
            raise ParamError(name, f"must be a non-empty list of numbers, got {value!r}")
        return tuple(self._check_scalar(name, v, low, None, False, False) for v in value)

    def choice(self, name: str, default: str, options: Sequence[str]) -> str:
        value = self._get(name, default)
        if value not in options:
            raise ParamError(name, f"must be one of {', '.join(map(str, options))}; got {value!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise ParamError(name, f"must be true or false, got {value!r}")
        return value

    def text(self, name: str, default: str | None = None) -> str:
        value = self._get(name, default)
        if not isinstance(value, str) or not value:
            raise ParamError(name, "is required: a non-empty string" if value is None
                             else f"must be a non-empty string, got {value!r}")
        return value

    def finish(self) -> None:
        """Reject keys no reader asked for: unknown, or meaningless with the other settings
        (e.g. ``z_scale`` on 2D data, ``clusters`` without clustered placement)."""
        unused = sorted(set(self._params) - self._used)
        if unused:
            raise ParamError(
                unused[0], "is not used with these settings (this kind, dimensionality and "
                f"placement take: {', '.join(sorted(self._used))})"
            )
