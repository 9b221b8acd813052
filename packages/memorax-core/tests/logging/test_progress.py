"""Progress: a live one-line bar on terminals, plain periodic lines elsewhere."""

from __future__ import annotations

import io
import math

import pytest

from memorax.logging import Progress


class Clock:
    """A controllable time source."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_live_bar_redraws_one_line_with_rate_eta_and_return():
    stream, clock = Terminal(), Clock()
    progress = Progress(1000, stream=stream, clock=clock)
    assert progress.live
    progress.update(100, latest_return=5.0)
    clock.now += 2.0
    progress.update(500, latest_return=12.5)
    progress.close()
    text = stream.getvalue()
    assert "\n" not in text[:-1] and text.endswith("\n")  # one line, redrawn in place
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("[##########----------]")
    assert "50.0%" in last and "500/1,000 steps" in last
    assert "200 steps/s" in last  # 400 steps in 2 s, measured from the first report
    assert "ETA 0:00:02" in last  # 500 steps left at 200 steps/s
    assert "return 12.5" in last


def test_live_bar_pads_over_a_longer_previous_line():
    stream, clock = Terminal(), Clock()
    progress = Progress(10, stream=stream, clock=clock)
    progress.update(1, latest_return=123456.0)
    clock.now += 1
    progress.update(2, latest_return=1.0)
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second) >= len(first)


def test_plain_lines_when_not_a_terminal_at_most_one_per_interval():
    stream, clock = io.StringIO(), Clock()
    progress = Progress(1000, stream=stream, interval=10.0, clock=clock)
    assert not progress.live
    for step in range(100, 1001, 100):
        progress.update(step, latest_return=float(step))
        clock.now += 3.0
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    # Printed at t=0, 12, 24 (every 10 s of reports at 3 s spacing), then the final state.
    assert len(lines) == 4
    assert lines[0].startswith(" 10.0% | 100/1,000 steps")
    assert lines[-1] == "100.0% | 1,000/1,000 steps | 33 steps/s | ETA 0:00:00 | return 1000"


def test_progress_as_a_logger_averages_the_latest_return_of_each_seed():
    stream, clock = io.StringIO(), Clock()
    progress = Progress(100, stream=stream, interval=0.0, clock=clock)
    progress.log(10, {"episode_return": 4.0}, seed=0)
    progress.log(10, {"episode_return": math.nan}, seed=1)  # no episode ended yet
    assert "return 4" in progress.line()
    clock.now += 1.0
    progress.log(20, {"episode_return": 6.0}, seed=0)
    progress.log(20, {"episode_return": 10.0}, seed=1)
    line = progress.line()
    assert "return 8" in line and "20/100 steps" in line
    assert "20 steps/s" in line  # both seeds: 10 + 10 steps in 1 s
    assert "ETA 0:00:08" in line  # 80 steps per seed left, 10 per seed per second


def test_a_resumed_run_counts_progress_from_its_initial_steps():
    progress = Progress(1000, stream=io.StringIO(), initial_steps=600, clock=Clock())
    assert "60.0%" in progress.line() and "ETA -" in progress.line()


def test_nan_return_keeps_the_previous_one():
    progress = Progress(10, stream=io.StringIO(), clock=Clock())
    progress.update(1, latest_return=3.0)
    progress.update(2, latest_return=math.nan)
    assert "return 3" in progress.line()


@pytest.mark.parametrize("total", [0, -5, 2.5])
def test_total_steps_must_be_a_positive_integer(total):
    with pytest.raises(ValueError, match="total_steps must be a positive integer"):
        Progress(total, stream=io.StringIO())


def test_update_after_close_is_an_error():
    progress = Progress(10, stream=io.StringIO())
    progress.close()
    with pytest.raises(RuntimeError, match="after close"):
        progress.update(1)


def test_several_seeds_show_the_lowest_and_highest_return_beside_the_mean():
    # A seed that collapsed (0.0) hides behind a mean of 0.75; the spread shows it.
    stream = io.StringIO()
    progress = Progress(100, stream=stream, live=False, interval=0)
    for seed, value in enumerate([1.0, 0.0, 1.0, 1.0]):
        progress.log(10, {"episode_return": value}, seed=seed)
    assert progress.line().endswith("return 0.75 (seeds 0 to 1)")
    progress.log(20, {"episode_return": math.nan}, seed=1)  # no episode ended: kept
    assert progress.line().endswith("return 0.75 (seeds 0 to 1)")


def test_one_seed_shows_no_spread():
    progress = Progress(100, stream=io.StringIO(), live=False)
    progress.log(10, {"episode_return": 3.0})
    assert progress.line().endswith("return 3")
