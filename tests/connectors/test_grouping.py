"""Which grouped item each lesson past the fatigue budget goes in, render after render."""

import pytest

from connectors.grouping import partition

Previous = list[tuple[str, list[str], bool]]


@pytest.mark.parametrize(
    ("grouped", "previous", "expected"),
    [
        (["a", "b"], [], [(None, ["a", "b"])]),
        (["a", "b", "c"], [("g1", ["a", "b"], False)], [("g1", ["a", "b", "c"])]),
        (
            ["a", "b", "c"],
            [("g1", ["a", "b"], True)],
            [("g1", ["a", "b"]), (None, ["c"])],
        ),
        (
            ["b", "c"],
            [("g1", ["a", "b"], True), ("g2", ["c"], False)],
            [("g1", ["b"]), ("g2", ["c"])],
        ),
        (["c"], [("g1", ["a", "b"], False)], [(None, ["c"])]),
        (["a", "b"], [("g1", ["a", "a", "b"], False), ("g2", ["b"], False)], [("g1", ["a", "b"])]),
        ([], [("g1", ["a"], False)], []),
    ],
    ids=[
        "first-render",
        "open-group-takes-newcomers",
        "marked-group-takes-none",
        "members-kept-withdrawn-dropped",
        "emptied-group-goes",
        "listed-twice-counts-once",
        "nothing-grouped",
    ],
)
def test_partition(
    grouped: list[str], previous: Previous, expected: list[tuple[str | None, list[str]]]
) -> None:
    assert partition(grouped, previous) == expected
    # Rendering the result again changes nothing (a repeat writes nothing).
    again: Previous = [(key or "new", members, False) for key, members in expected]
    assert [members for _key, members in partition(grouped, again)] == [m for _k, m in expected]
