"""Glue for scripts run by Snakemake: log to the rule's log file, report errors clearly."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from workflow_lib.errors import CellsynthError

log = logging.getLogger("cellsynth")


def run_script(snakemake: Any, main: Callable[[], None]) -> None:
    """Run ``main()`` with stdout/stderr (tqdm, warnings, logging) going to ``snakemake.log[0]``.

    A :class:`CellsynthError` (bad input or config) ends the job with exit code 1 and its
    one-line message both in the log and on the console; other exceptions keep their traceback
    in the log.
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
        try:
            main()
        except CellsynthError as exc:
            log.error("%s", exc)
            print(f"cellsynth error in rule {snakemake.rule}: {exc}", file=console)
            sys.exit(1)
        except Exception:
            log.exception("rule %s failed", snakemake.rule)
            print(f"cellsynth: rule {snakemake.rule} failed, see {log_path}", file=console)
            raise
