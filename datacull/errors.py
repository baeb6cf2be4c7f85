"""User-facing errors. Each message is one line that names the problem and, where there is one, the fix.

The CLI prints these without a traceback (``--debug`` or ``HYDRA_FULL_ERROR=1`` shows it); anything else
is a bug and keeps its traceback. Each also subclasses the builtin a library user would expect.
"""

from __future__ import annotations


class DatacullError(Exception):
    """Base class: an error caused by the input, not by datacull."""


class InputError(DatacullError, ValueError):
    """An argument or config value is invalid (pruning rate out of range, bad scores, ...)."""


class DataError(DatacullError, ValueError):
    """The dataset cannot be loaded as configured (missing root, bad layout, undecodable file...)."""


class TrajectoryError(DatacullError, RuntimeError):
    """A trajectory or cache file is missing, truncated or inconsistent."""


class DivergenceError(DatacullError, RuntimeError):
    """Training produced a NaN or infinite loss."""


class LostRankError(DatacullError, RuntimeError):
    """Another process of a distributed run stopped (a node lost, a worker killed): this one cannot go on."""


class UnknownNameError(DatacullError, KeyError):
    """A registry lookup for a name nobody registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it a readable single line
        return str(self.args[0])
