"""The search language: parsed once, rendered as quoted FTS5 and as websearch terms."""

import pytest

from store.search_query import QueryTooLongError, parse, to_fts5, websearch_text


@pytest.mark.parametrize(
    ("text", "fts5"),
    [
        ("pool", '("pool")'),
        ("Pool LIMIT", '("pool") AND ("limit")'),
        ('"read replica" lag', '("read replica") AND ("lag")'),
        ("assets or replica pool", '("assets" OR "replica") AND ("pool")'),
        ('pool -retry -"load shed"', '(("pool")) NOT ("retry" OR "load shed")'),
        ("db-pool", '("db pool")'),
        ("the pool of the workers", '("pool") AND ("workers")'),
        ('"the pool of workers"', '("pool of workers")'),
        ('pool" AND( NEAR(x', '("pool") AND ("near x")'),
        ("title:pool", '("title pool")'),
        ("or pool or", '("pool")'),
        ("max_connections", '("max connections")'),
    ],
)
def test_rendered_for_fts5(text: str, fts5: str) -> None:
    assert to_fts5(parse(text)) == fts5


@pytest.mark.parametrize("text", ['"', "AND(", "the", "- -", "or", "-pool", "___", "!!"])
def test_nothing_left_to_search_for(text: str) -> None:
    assert parse(text).empty


def test_websearch_terms_are_plain_words_or_phrases() -> None:
    query = parse('"read replica" -"load shed" pool')
    rendered = [websearch_text(t) for clause in query.clauses for t in clause]
    assert rendered == ['"read replica"', "pool"]
    assert [websearch_text(t) for t in query.excluded] == ['"load shed"']


def test_size_limits() -> None:
    with pytest.raises(QueryTooLongError):
        parse("x" * 501)
    with pytest.raises(QueryTooLongError):
        parse(" ".join(f"w{n}" for n in range(33)))
