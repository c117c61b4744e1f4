"""Errors that carry one clear message for the user: which file or key, and what is wrong."""

from __future__ import annotations

from pathlib import Path


class CellsynthError(Exception):
    """Base class of every error the workflow reports to users."""


class InputError(CellsynthError, ValueError):
    """A user-supplied file cannot be used. The message names the file and the problem."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)

    def __reduce__(self):
        # Pickling (multiprocessing workers) must call __init__ with its own arguments.
        return (type(self), (self.path, self.problem))


class ConfigError(CellsynthError, ValueError):
    """A config value is unusable. The message names the key and the problem."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"config key '{key}': {problem}")

    def __reduce__(self):
        return (type(self), (self.key, self.problem))


class ParamError(CellsynthError, ValueError):
    """A domain parameter is unusable. ``name`` is its key *within* its settings block (e.g.
    ``radius`` of a simulation's ``params``); the workflow layer turns it into a
    :class:`ConfigError` with the full config key, so domain code never knows config paths."""

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = problem
        super().__init__(f"parameter '{name}': {problem}")

    def __reduce__(self):
        return (type(self), (self.name, self.problem))
