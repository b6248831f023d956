"""The CLI's progress display (flows/progress_display.py) and the reporting it follows
(castkeep/progress.py): plain lines off a terminal, nothing with --json, never failing the work."""

from __future__ import annotations

import io

from castkeep import progress
from castkeep.flows import progress_display as pd


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_reports_reach_the_listener_only_inside_the_block():
    seen = []
    progress.report("variants", 0, 2)  # no one listens: nothing happens
    with progress.following(seen.append):
        progress.report("variants", 1, 2, passed=1, rejected=0)
    progress.report("variants", 2, 2)
    assert seen == [progress.Progress("variants", 1, 2, {"passed": 1, "rejected": 0})]


def test_a_failing_listener_does_not_fail_the_work():
    def broken(p):  # noqa: ANN001
        raise RuntimeError("display gone")

    with progress.following(broken):
        progress.report("assets checked", 1, 3)  # must not raise


def test_plain_lines_name_the_unit_the_count_and_the_counts():
    out = io.StringIO()
    lines = pd.PlainLines(out)
    lines(progress.Progress("variants", 0, 2, {"passed": 0, "rejected": 0, "retries": 0}))
    lines(progress.Progress("variants", 1, 2, {"passed": 1, "rejected": 0, "retries": 2}))
    lines(progress.Progress("variants", 2, 2, {"passed": 1, "rejected": 1, "retries": 2}))
    lines(progress.Progress("variants", 2, 2, {"passed": 1, "rejected": 1, "retries": 2}))
    got = out.getvalue().splitlines()
    assert got[0] == "variants 0/2 (0%): passed 0, rejected 0, retries 0"
    assert got[1].startswith("variants 1/2 (50%): passed 1, rejected 0, retries 2; eta ")
    assert got[2] == "variants 2/2 (100%): passed 1, rejected 1, retries 2"  # no eta when done
    assert len(got) == 3  # a repeated report prints nothing new


def test_plain_lines_are_periodic_not_one_per_unit():
    out = io.StringIO()
    lines = pd.PlainLines(out)
    for done in range(0, 1001):
        lines(progress.Progress("assets checked", done, 1000))
    got = out.getvalue().splitlines()
    # the first, every tenth of the way (100..1000): not a thousand lines
    assert got[0] == "assets checked 0/1000 (0%)"
    assert got[-1] == "assets checked 1000/1000 (100%)"
    assert len(got) == 11


def test_eta_is_measured_from_the_first_report():
    rate = pd._Rate()
    assert rate.eta(progress.Progress("variants", 3, 10)) is None  # resumed at 3: no rate yet
    eta = rate.eta(progress.Progress("variants", 4, 10))
    assert eta is not None and eta >= 0
    assert rate.eta(progress.Progress("variants", 10, 10)) is None  # done: nothing left
    # The next request's variants start over: no rate until one of them is done.
    assert rate.eta(progress.Progress("variants", 0, 2)) is None
    assert rate.eta(progress.Progress("variants", 1, 2)) is not None


def test_json_shows_nothing_a_terminal_gets_a_bar_a_pipe_gets_lines():
    assert pd.display_for(True, io.StringIO()) is None
    assert isinstance(pd.display_for(False, io.StringIO()), pd.PlainLines)
    tty = _Tty()
    bar = pd.display_for(False, tty)
    assert isinstance(bar, pd.Bar)
    bar(progress.Progress("variants", 1, 2, {"passed": 1}))
    bar.close()
    drawn = tty.getvalue()
    assert "variants" in drawn and "1/2" in drawn and "passed 1" in drawn and "━" in drawn
    assert drawn.endswith("\x1b[2K")  # removed when the command ends (stdout keeps the result)


def test_ingest_outcomes_are_counted_as_portraits():
    out = io.StringIO()
    listener = pd._ingest_listener(pd.PlainLines(out))

    class Outcome:
        def __init__(self, status: str) -> None:
            self.status = status

    listener(0, 2, None)
    listener(1, 2, Outcome("accepted"))
    listener(2, 2, Outcome("duplicate"))
    assert out.getvalue().splitlines()[-1] == (
        "portraits 2/2 (100%): accepted 1, duplicates 1, rejected 0")


def test_showing_progress_with_json_prints_nothing(capsys):
    with pd.showing_progress(True):
        progress.report("variants", 1, 2)
    assert capsys.readouterr().err == ""


def test_showing_progress_off_a_terminal_prints_lines_on_stderr(capsys):
    with pd.showing_progress(False):
        progress.report("variants", 1, 2, passed=1)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["variants 1/2 (50%): passed 1"]
