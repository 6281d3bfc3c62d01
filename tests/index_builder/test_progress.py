"""Progress bars (index_builder/progress.py): whole lines, no carriage returns, when stderr is a file."""

from __future__ import annotations

import subprocess
import sys
import time

from tqdm import tqdm

from index_builder.progress import LineBar, progress_bar

BAR_SCRIPT = """
from index_builder.progress import progress_bar
bar = progress_bar(total=200_000, desc="steps", unit="step")
for step in range(200_000):
    bar.update()
    bar.set_postfix(loss=f"{1 / (step + 1):.3f}")  # refreshes on every step, as training does
bar.close()
for _ in progress_bar(range(100_000), desc="chunks", leave=False):
    pass
"""


def test_bar_on_redirected_stderr_writes_few_whole_lines(tmp_path):
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        subprocess.run([sys.executable, "-c", BAR_SCRIPT], stderr=stderr, check=True, timeout=120)
    text = log.read_text()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text
    assert 4 <= len(lines) <= 8, lines  # per bar: the start, a line per 30 s, the end
    assert lines[0].startswith("steps:") and "200000/200000" in lines[1]
    assert lines[-1].startswith("chunks:") and "100000/100000" in lines[-1]


def test_lines_are_spaced_by_the_interval(tmp_path):
    path = tmp_path / "bar.log"
    with path.open("w") as file:
        assert not file.isatty()
        bar = progress_bar(range(40), desc="slow", file=file, mininterval=0.1)
        assert isinstance(bar, LineBar)
        for _ in bar:
            time.sleep(0.01)  # 0.4 s in all: the start, about 4 interval lines, the end
    lines = path.read_text().splitlines()
    assert 2 <= len(lines) <= 8, lines
    assert "40/40" in lines[-1] and "\r" not in path.read_text()


def test_disabled_bar_writes_nothing_and_a_terminal_gets_a_live_bar(tmp_path):
    path = tmp_path / "bar.log"
    with path.open("w") as file:
        assert list(progress_bar(range(3), desc="quiet", file=file, enabled=False)) == [0, 1, 2]
    assert path.read_text() == ""

    class Terminal:
        def isatty(self):
            return True

        def write(self, s):
            pass

        def flush(self):
            pass

    bar = progress_bar(range(3), desc="live", file=Terminal())
    assert type(bar) is tqdm
    bar.close()
