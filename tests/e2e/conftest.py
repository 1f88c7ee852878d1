"""Figures measured by end-to-end tests, printed once at the end of the run (`tests/conftest.py`
prints them: the process that prints the summary never collects this directory)."""

from collections.abc import Callable

import pytest

from tests.conftest import FIGURES_PROPERTY


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record one line of measured figures for the terminal summary."""

    def add(line: str) -> None:
        request.node.user_properties.append((FIGURES_PROPERTY, line))

    return add
