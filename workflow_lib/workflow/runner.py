"""Running a stage as a Snakemake job: the job's files and settings, its log, its errors.

Every script in ``scripts/`` is ``run_script(snakemake, stages.<rule>)``. Outside Snakemake
(tests, ``bench/``) build a :class:`Job` by hand and call the stage directly.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from workflow_lib.errors import CellsynthError

log = logging.getLogger("cellsynth")


class Files(list):
    """File list with named entries, like Snakemake's ``input``/``output``: ``files[0]``,
    ``files.labels``. A named entry may itself be a list (``files.h5``). Names are instance
    attributes, so they shadow list methods of the same name (``files.index``), as in
    Snakemake."""

    def __init__(self, *paths: Any, **named: Any):
        super().__init__(str(p) for p in paths)
        for name, value in named.items():
            if isinstance(value, (list, tuple)):
                value = [str(v) for v in value]
                self.extend(value)
            else:
                value = str(value)
                self.append(value)
            setattr(self, name, value)


@dataclass(frozen=True)
class Job:
    """What a stage gets from its rule: files, params and wildcards by name, and its threads."""

    input: Any
    output: Any
    params: Any = field(default_factory=SimpleNamespace)
    wildcards: Any = field(default_factory=SimpleNamespace)
    threads: int = 1

    @classmethod
    def of(cls, snakemake: Any) -> "Job":
        return cls(snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards,
                   snakemake.threads)


class _Console(logging.Handler):
    """Echo warnings to the terminal that started the job, not only to the job's log file."""

    def __init__(self, stream, rule: str):
        super().__init__(logging.WARNING)
        self.stream, self.rule = stream, rule

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR:
            print(f"cellsynth warning in rule {self.rule}: {record.getMessage()}", file=self.stream)


def run_script(snakemake: Any, stage: Callable[[Job], None]) -> None:
    """Run ``stage(Job.of(snakemake))`` with stdout/stderr (tqdm, warnings, logging) going to
    ``snakemake.log[0]``.

    A :class:`CellsynthError` (bad input or config) ends the job with exit code 1 and its
    one-line message both in the log and on the console; warnings reach the console too; other
    exceptions keep their traceback in the log.
    """
    console = sys.stderr
    log_path = snakemake.log[0] if len(snakemake.log) else None
    with contextlib.ExitStack() as stack:
        if log_path:
            stream = stack.enter_context(open(log_path, "w", buffering=1, encoding="utf-8"))
            stack.enter_context(contextlib.redirect_stdout(stream))
            stack.enter_context(contextlib.redirect_stderr(stream))
        else:
            stream = sys.stderr
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(message)s",
            stream=stream,
            force=True,
        )
        for handler in [h for h in log.handlers if isinstance(h, _Console)]:
            log.removeHandler(handler)
        if log_path:
            log.addHandler(_Console(console, snakemake.rule))
        try:
            stage(Job.of(snakemake))
        except CellsynthError as exc:
            log.error("%s", exc)
            print(f"cellsynth error in rule {snakemake.rule}: {exc}", file=console)
            sys.exit(1)
        except Exception:
            log.exception("rule %s failed", snakemake.rule)
            print(f"cellsynth: rule {snakemake.rule} failed, see {log_path}", file=console)
            raise
