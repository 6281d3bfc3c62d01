"""What a long builder step shows on stderr: a live tqdm bar on a terminal, occasional whole lines in a file or
a pipe (a log must not fill with carriage-return frames), and the stage lines of ``logging``.

Every progress bar of the builder comes from ``progress_bar``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

TERMINAL_INTERVAL_S = 0.1  # redraw a live bar ten times a second
LOG_INTERVAL_S = 30.0  # one line every half minute in a log: enough to see a step move, not a flood


class LineBar(tqdm):
    """A tqdm bar that writes whole lines, at most one per ``mininterval`` (``set_postfix`` and ``tqdm.write``
    refresh too), and never moves the cursor or erases: for files and pipes. The last line gives the final count
    and rate."""

    _line_at: tuple[float, int] | None = None  # (time, count) of the last line written

    def refresh(self, nolock: bool = False, lock_args=None) -> bool:
        if self._line_at is not None and self._time() - self._line_at[0] < self.mininterval:
            return False
        return super().refresh(nolock, lock_args)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg == "":  # tqdm erases a bar by displaying nothing: in a log there is nothing to erase
            return False
        self.fp.write((str(self) if msg is None else msg) + "\n")
        self.fp.flush()
        self._line_at = (self._time(), self.n)
        return True

    def clear(self, nolock: bool = False) -> None:
        """A written line stays (tqdm would return the carriage to overwrite it)."""

    def moveto(self, n: int) -> None:
        """No cursor movement: nested bars just take turns writing lines."""

    def close(self) -> None:
        if not self.disable and self._line_at is not None and self._line_at[1] != self.n:
            self.display()  # the final count, rate and elapsed time
        self.leave = False  # tqdm's own close would write the bar once more
        super().close()


def progress_bar(iterable: Iterable | None = None, desc: str | None = None, total: int | None = None,
                 enabled: bool = True, file: IO[str] | None = None, **options) -> tqdm:
    """A tqdm bar over ``iterable`` (or updated by hand when None): live on a terminal, a line every
    ``LOG_INTERVAL_S`` seconds otherwise.

    enabled: False gives a silent bar (the callers' ``progress=False``).
    file: where the bar goes (default: stderr); whether it is a terminal decides the form.
    options: any other tqdm option (unit, leave, initial, ...).
    """
    file = sys.stderr if file is None else file
    terminal = file.isatty()
    interval = TERMINAL_INTERVAL_S if terminal else LOG_INTERVAL_S
    bar = tqdm if terminal else LineBar
    options = {"mininterval": interval, "maxinterval": max(interval, 10.0), "dynamic_ncols": terminal,
               "ascii": None if terminal else True, **options}
    return bar(iterable, desc=desc, total=total, disable=not enabled, file=file, **options)


@contextmanager
def stage_lines(level: int = logging.INFO) -> Iterator[None]:
    """Send ``logging`` records (the builder's per-stage lines) to stderr as plain messages, for the length of
    a command; on a terminal through ``tqdm.write`` so that they do not cut through a live bar."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        if sys.stderr.isatty():
            with logging_redirect_tqdm():
                yield
        else:
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
