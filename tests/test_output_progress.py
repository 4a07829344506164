"""The progress displays on their own: when `Lines` says a line, what `Bars` draws, and
that both take counts from many threads and nothing after `close()`."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator

import pytest
from rich.console import Console

from alembic_preflight import output
from alembic_preflight.output_progress import Bars, Lines


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def not_diverted() -> Iterator[None]:
    yield
    assert output._through is None  # every display gives stderr back
    output.divert(None)


def said(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("alembic-preflight: ")]


def test_lines_at_each_tenth_of_all_lanes_together(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    lines = Lines(clock)
    lines.advance("stepwise", 0, 0, 144)
    lines.advance("stepwise", 1, 0, 144)
    clock.now += 3  # the lanes get ready
    for done in range(1, 145):
        clock.now += 0.01
        lines.advance("stepwise", 0, done, 144)
        lines.advance("stepwise", 1, done, 144)
    lines.end("stepwise")
    out, err = capsys.readouterr()
    assert out == ""
    got = said(err)
    assert len(got) == 10
    assert got[0] == "alembic-preflight: stepwise: 29/288 revisions, 3 s"
    assert got[-1] == "alembic-preflight: stepwise: 288/288 revisions, 4 s"


def test_revisions_one_lane_hands_another_keep_the_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Stepwise's takeover: lane 1, done with its 20, takes 15 of lane 0's 40, which has
    walked one more since it last said so. Both lanes' counts at once: said one lane
    after the other, the first would show 26/45 (a total that shrank, seen in a run)."""
    clock = Clock()
    lines = Lines(clock)
    lines.advance_lanes("stepwise", {0: (0, 40), 1: (0, 20)})
    clock.now += 3
    lines.advance_lanes("stepwise", {0: (5, 40), 1: (20, 20)})
    clock.now += 10  # a line is due at the count's next step
    lines.advance_lanes("stepwise", {0: (6, 25), 1: (20, 35)})
    for done in range(21, 36):
        lines.advance("stepwise", 1, done, 35)
    for done in range(7, 26):
        lines.advance("stepwise", 0, done, 25)
    lines.end("stepwise")
    got = said(capsys.readouterr().err)
    assert "alembic-preflight: stepwise: 26/60 revisions, 13 s" in got
    assert all(re.search(r" \d+/60 revisions", ln) for ln in got), got
    assert got[-1] == "alembic-preflight: stepwise: 60/60 revisions, 13 s"


def test_nothing_in_a_checks_first_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    """A short history's log gets its result line only; a longer run is told from 3 s."""
    clock = Clock()
    lines = Lines(clock)
    lines.advance("upgrade", 0, 0, 6)
    for done in range(1, 7):
        clock.now += 0.1
        lines.advance("upgrade", 0, done, 6)
    lines.end("upgrade")
    lines.advance("stepwise", 0, 0, 100)
    for done in range(1, 31):
        clock.now += 0.2
        lines.advance("stepwise", 0, done, 100)
    assert said(capsys.readouterr().err) == [
        "alembic-preflight: stepwise: 15/100 revisions, 3 s",
        "alembic-preflight: stepwise: 20/100 revisions, 4 s",
        "alembic-preflight: stepwise: 30/100 revisions, 6 s",
    ]


def test_a_line_once_ten_seconds_have_passed_and_the_count_moved(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    lines = Lines(clock)
    lines.advance("stepwise", 0, 0, 1000)
    clock.now += 9.9
    lines.advance("stepwise", 0, 1, 1000)  # not a tenth, not 10 s yet
    clock.now += 0.2
    lines.advance("stepwise", 0, 2, 1000)  # 10.1 s
    clock.now += 30
    lines.advance("stepwise", 0, 2, 1000)  # no move: nothing to say
    lines.advance("stepwise", 0, 1, 1000)  # never back
    lines.advance("stepwise", 0, 3, 1000)
    assert said(capsys.readouterr().err) == [
        "alembic-preflight: stepwise: 2/1000 revisions, 10 s",
        "alembic-preflight: stepwise: 3/1000 revisions, 40 s",
    ]


def test_each_check_counts_on_its_own_in_its_unit(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    lines = Lines(clock)
    lines.advance("upgrade", 0, 0, 10)
    lines.advance("roundtrip", 0, 0, 20, "steps")
    clock.now += 5
    lines.advance("upgrade", 0, 10, 10)
    lines.advance("roundtrip", 0, 2, 20, "steps")
    lines.end("upgrade")
    lines.advance("upgrade", 0, 0, 10)  # a new run of it counts from the start again
    clock.now += 5
    lines.advance("upgrade", 0, 5, 10)
    assert said(capsys.readouterr().err) == [
        "alembic-preflight: upgrade: 10/10 revisions, 5 s",
        "alembic-preflight: roundtrip: 2/20 steps, 5 s",
        "alembic-preflight: upgrade: 5/10 revisions, 5 s",
    ]


def test_lanes_in_threads_count_up_to_the_total(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    lines = Lines(clock)
    for lane in range(4):
        lines.advance("stepwise", lane, 0, 500)
    clock.now += 3

    def walk(lane: int) -> None:
        for done in range(1, 501):
            lines.advance("stepwise", lane, done, 500)

    threads = [threading.Thread(target=walk, args=(lane,)) for lane in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = [
        int(m[1]) for m in re.finditer(r"stepwise: (\d+)/2000 revisions", capsys.readouterr().err)
    ]
    assert counts == sorted(set(counts)) and len(counts) == 10
    assert counts[-1] == 2000


def test_nothing_is_said_after_close(capsys: pytest.CaptureFixture[str]) -> None:
    lines = Lines(Clock())
    lines.advance("stepwise", 0, 0, 10)
    lines.close()
    lines.advance("stepwise", 0, 10, 10)  # a lane still ending after Ctrl-C
    assert said(capsys.readouterr().err) == []


# -- bars ------------------------------------------------------------------------------
def terminal() -> tuple[Console, io.StringIO]:
    file = io.StringIO()
    return Console(file=file, force_terminal=True, width=100, no_color=True), file


def test_bars_for_the_check_and_each_lane_then_gone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    console, file = terminal()
    bars = Bars(console)
    bars.advance("stepwise", 1, 0, 144)
    bars.advance("stepwise", 0, 0, 144)
    bars.advance("stepwise", 1, 70, 144)
    bars.advance("stepwise", 0, 70, 144)
    assert bars._progress is not None
    bars._progress.refresh()
    drawn = file.getvalue()
    # lane 1 came first; drawn: the check's total, then its lanes in order
    frame = drawn[drawn.rfind("stepwise") :]
    assert re.search(r"stepwise .*140/288 revisions .*ETA", frame), frame
    assert frame.index("lane 0") < frame.index("lane 1"), frame
    assert re.search(r"lane 0 .* 70/144 revisions", frame), frame
    # a line said meanwhile goes above the bars, on the terminal, not past them on stderr
    output.info("upgrade: passed in 3.1 s")
    assert capsys.readouterr().err == ""
    assert "alembic-preflight: upgrade: passed in 3.1 s" in file.getvalue()
    bars.end("stepwise")  # stopped: erased (transient), the cursor shown again
    assert bars._progress is None
    text = file.getvalue()
    assert text.rfind("\x1b[?25h") > text.rfind("\x1b[?25l") >= 0
    output.info("stepwise: passed in 21.0 s")  # stderr again
    assert "stepwise: passed" in capsys.readouterr().err


def test_one_lane_is_one_bar_and_close_stops_it(capsys: pytest.CaptureFixture[str]) -> None:
    console, file = terminal()
    bars = Bars(console)
    bars.advance("upgrade", 0, 0, 300)
    bars.advance("upgrade", 0, 120, 300)
    assert bars._progress is not None
    assert [t.description for t in bars._progress.tasks] == ["upgrade"]
    bars.close()  # Ctrl-C: verify's `with` ends it
    assert bars._progress is None
    text = file.getvalue()
    assert text.rfind("\x1b[?25h") > text.rfind("\x1b[?25l") >= 0  # the cursor is back
    bars.advance("upgrade", 0, 200, 300)  # nothing starts again
    assert bars._progress is None and file.getvalue() == text
