"""Figures measured by end-to-end tests, printed once at the end of the run."""

from collections.abc import Callable

import pytest

FIGURES: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Record one line of measured figures for the terminal summary."""
    return FIGURES.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the end-to-end tests measured."""
    if FIGURES:
        terminalreporter.section("end-to-end figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
