"""Search contract: the same corpus gives the same hits, order, facets and pages on SQLite (FTS5,
bm25) and PostgreSQL (tsvector, ts_rank)."""

from typing import Any

import pytest
from sqlalchemy import inspect, text

from core.base import utcnow
from core.lesson import Applicability, LessonContext, LessonStatus, Mandate
from store import lessons, search
from store.engine import Database
from store.search import SearchRequest
from store.search_query import QueryTooLongError
from tests.store.test_lessons import make_lesson

CORPUS = [
    make_lesson(
        "pool-size",
        title="Derive the connection pool size from the worker count",
        statement="Recompute the pool limit whenever workers or threads change.",
        applicability=Applicability(
            services=("payments-api", "ledger-api"), tags=("database", "connection-pool")
        ),
        mandate=Mandate.REQUIRED,
        owner="platform",
    ),
    make_lesson(
        "retry-budgets",
        title="Bound client retries with a budget",
        statement="Every retry loop has a budget and jitter, so an outage is not amplified.",
        context=LessonContext(what_happened="Retries tripled the load on the database pool."),
        applicability=Applicability(services=("payments-api",), tags=("resilience",)),
        owner="sre",
    ),
    make_lesson(
        "read-replica-lag",
        title="Reporting reads go to a read replica",
        statement="Heavy reporting queries run on the replica and tolerate replication lag.",
        applicability=Applicability(components=("db-pool",), tags=("database",)),
        owner="platform",
    ),
    make_lesson(
        "cache-bust",
        title="Fingerprint static assets",
        statement="Serve CSS and JS under content-hashed names.",
        applicability=Applicability(tags=("frontend",)),
        owner="web",
        status=LessonStatus.IN_REVIEW,
    ),
    make_lesson(
        "cafe-menu",
        title="Le café ferme à minuit",
        statement="Unicode text is searchable too: naïve façade 502.",
        owner="web",
    ),
    *(
        # Unrelated lessons, so that a term in a few lessons is rare enough for bm25 to weigh.
        make_lesson(
            f"filler-{n}",
            title=f"Unrelated practice number {n}",
            statement="Write down what you learned while it is fresh.",
            owner="docs",
        )
        for n in range(4)
    ),
]


@pytest.fixture
def corpus(db: Database) -> Database:
    with db.transaction() as session:
        for lesson in CORPUS:
            lessons.add(session, lesson, utcnow())
        lessons.publish(session, "pool-size", utcnow())
    return db


def find(db: Database, text: str | None = None, **options: Any) -> list[str]:
    with db.transaction() as session:
        page = search.search(session, SearchRequest(text=text, **options))
    return [hit.lesson.id for hit in page.hits]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A list is an order both backends agree on; a set is hits whose order bm25 and
        # ts_rank may weigh differently (close scores, ties).
        ("pool", ["pool-size", "read-replica-lag", "retry-budgets"]),  # title > scope > body
        ("retries", ["retry-budgets"]),  # stemmed: retry, retries
        ("the pool of workers", ["pool-size"]),  # stop words do not have to occur
        ('"read replica"', ["read-replica-lag"]),
        ('"replica read"', []),  # a phrase keeps its order
        ("pool -retry", ["pool-size", "read-replica-lag"]),
        ("pool -retry -replica", ["pool-size"]),
        ("assets or replica", {"cache-bust", "read-replica-lag"}),
        ("database", {"pool-size", "read-replica-lag", "retry-budgets"}),  # tags and body
        ("payments", {"retry-budgets", "pool-size"}),  # services are indexed
        ("café", ["cafe-menu"]),
        ("cafe", []),  # accents are kept, as PostgreSQL's english configuration does
        ("502", ["cafe-menu"]),
        ("POOL LIMIT", ["pool-size"]),
        ("db-pool", ["read-replica-lag"]),  # a hyphenated word is a phrase of its parts
    ],
)
def test_text_search_finds_and_orders_the_same_on_both_backends(
    corpus: Database, text: str, expected: list[str] | set[str]
) -> None:
    found = find(corpus, text)
    assert (set(found) if isinstance(expected, set) else found) == expected
    assert len(found) == len(set(found))


@pytest.mark.parametrize(
    "hostile",
    [
        '"',
        '"""',
        "AND(",
        "pool AND(",
        "NEAR(pool, 2)",
        "pool*",
        "^pool",
        "title:pool",
        "{title body}: pool",
        "pool OR",
        "OR pool",
        "- -- ---",
        "pool) OR (1=1",
        "'; DROP TABLE lessons; --",
        "\\x00 pool",
        "pool\u0000",
        "😀 pool 🚀",
        ":::",
        "!!pool",
        "pool & !retry | ",
        "<-> pool",
        "a" * 300,
    ],
)
def test_hostile_text_never_breaks_the_query(corpus: Database, hostile: str) -> None:
    found = find(corpus, hostile)
    assert set(found) <= {lesson.id for lesson in CORPUS}


def test_hostile_text_is_read_as_words(corpus: Database) -> None:
    assert find(corpus, '"') == []
    assert find(corpus, "AND(") == []  # `and` is a stop word: nothing left to search for
    assert find(corpus, "pool AND(") == ["pool-size", "read-replica-lag", "retry-budgets"]
    assert find(corpus, "title:pool") == []  # `title` does not occur: no column filters
    assert find(corpus, "pool* OR") == ["pool-size", "read-replica-lag", "retry-budgets"]


def test_filters_and_facets(corpus: Database) -> None:
    with corpus.transaction() as session:
        page = search.search(session, SearchRequest(text="database"))
        assert page.facets["status"] == {"draft": 2, "published": 1}
        assert page.facets["tag"] == {
            "database": 2,
            "connection-pool": 1,
            "resilience": 1,
        }
        assert page.facets["owner"] == {"platform": 2, "sre": 1}
        assert page.facets["mandate"] == {"invited": 2, "required": 1}
        assert page.facets["service"] == {"payments-api": 2, "ledger-api": 1}
        filtered = search.search(
            session,
            SearchRequest(text="database", filters={"status": ["draft"], "owner": ["platform"]}),
        )
    assert [h.lesson.id for h in filtered.hits] == ["read-replica-lag"]
    assert filtered.facets["status"] == {"draft": 1}
    assert find(corpus, None, filters={"tag": ["database", "frontend"]}) == [
        "cache-bust",
        "pool-size",
        "read-replica-lag",
    ]
    assert find(corpus, "", filters={"service": ["ledger-api"]}) == ["pool-size"]
    assert find(corpus, "pool", filters={"mandate": ["required"]}) == ["pool-size"]
    with pytest.raises(ValueError, match="unknown search filter"):
        find(corpus, "pool", filters={"colour": ["red"]})


def test_pages(corpus: Database) -> None:
    ids = sorted(lesson.id for lesson in CORPUS)
    pages = []
    offset: int | None = 0
    with corpus.transaction() as session:
        while offset is not None:
            page = search.search(session, SearchRequest(limit=4, offset=offset))
            assert page.total == len(CORPUS)
            assert page.facets["status"] == {"draft": 7, "in_review": 1, "published": 1}
            pages.append([h.lesson.id for h in page.hits])
            offset = page.next_offset
        beyond = search.search(session, SearchRequest(limit=4, offset=40))
    assert pages == [ids[:4], ids[4:8], ids[8:]]
    assert (beyond.hits, beyond.total, beyond.next_offset) == ((), len(CORPUS), None)


def test_the_index_follows_every_save(corpus: Database) -> None:
    renamed = CORPUS[3].model_copy(
        update={"title": "Hash the names of static files", "status": LessonStatus.DRAFT}
    )
    with corpus.transaction() as session:
        lessons.save(session, renamed, utcnow())
    assert find(corpus, "fingerprint") == []
    assert find(corpus, "hash names") == ["cache-bust"]
    assert find(corpus, "", filters={"status": ["in_review"]}) == []
    assert find(corpus, "", filters={"status": ["draft"]})[0] == "cache-bust"


def test_limits_on_the_query_text(corpus: Database) -> None:
    with pytest.raises(QueryTooLongError):
        find(corpus, "x" * 501)
    with pytest.raises(QueryTooLongError):
        find(corpus, " ".join(f"w{n}" for n in range(33)))


def test_dialect_specific_search_objects_exist(db: Database) -> None:
    names = set(inspect(db.engine).get_table_names())
    if db.dialect == "sqlite":
        expected = {n for n in search.UNMANAGED if n.startswith("lesson_search_fts")}
        assert expected <= names
    else:
        with db.engine.connect() as conn:
            indexes = conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'lesson_search'")
            ).scalars()
            assert "ix_lesson_search_document" in set(indexes)


def test_postgresql_uses_the_gin_index(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL's planner only")
    with db.transaction() as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))
        matched = search._matching(session, search.parse("pool"))
        sql = matched.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        plan = session.connection().exec_driver_sql(f"EXPLAIN {sql}").scalars()
        assert "ix_lesson_search_document" in "\n".join(plan)
