"""Full-text search over lessons with facets: FTS5 + bm25 on SQLite, tsvector + ts_rank on
PostgreSQL, behind one function."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, exists, func, literal, literal_column, select
from sqlalchemy import table as sql_table
from sqlalchemy.orm import Session

from core.lesson import Lesson
from store.documents import from_doc
from store.search_query import Query, Term, parse, to_fts5, websearch_text
from store.tables import LessonFacetRow, LessonRow, LessonSearchRow

FACETS = ("status", "mandate", "form", "owner", "tag", "service", "component")
"""Facet names, which are also the filter names."""

UNMANAGED = frozenset(
    {
        "lesson_search_fts",
        "lesson_search_fts_config",
        "lesson_search_fts_data",
        "lesson_search_fts_docsize",
        "lesson_search_fts_idx",
        "ix_lesson_search_document",
    }
)
"""Search objects one dialect has and the table metadata cannot describe (the FTS5 table and its
shadow tables on SQLite, the expression GIN index on PostgreSQL); migrations create them."""

# Must match the index expression in the migration (PostgreSQL matches it textually).
_DOCUMENT: ColumnElement[Any] = literal_column(
    "setweight(to_tsvector('english'::regconfig, lesson_search.title), 'A') || "
    "setweight(to_tsvector('english'::regconfig, lesson_search.scope), 'B') || "
    "setweight(to_tsvector('english'::regconfig, lesson_search.body), 'D')"
)
_ENGLISH: ColumnElement[Any] = literal_column("'english'::regconfig")
# Same 10 : 4 : 1 emphasis as ts_rank's default A/B/D weights (1.0, 0.4, 0.1).
_BM25_WEIGHTS = (10.0, 4.0, 1.0)
_FTS = sql_table("lesson_search_fts")


def include_name(name: str | None, _type: object, _parents: object) -> bool:
    """Alembic filter: leave the dialect-specific search objects out of schema comparisons."""
    return name not in UNMANAGED


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """Search text (None or blank lists everything), filters by facet, and a page window."""

    text: str | None = None
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A lesson's working copy and its relevance (higher is better; scales differ per backend)."""

    lesson: Lesson
    score: float


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of hits, the total, facet counts over every hit, and where the next page starts."""

    hits: tuple[SearchHit, ...]
    total: int
    facets: dict[str, dict[str, int]]
    next_offset: int | None


def _facet_values(lesson: Lesson) -> set[tuple[str, str]]:
    a = lesson.applicability
    return {
        ("status", lesson.status.value),
        ("mandate", lesson.mandate.value),
        ("form", lesson.form.value),
        ("owner", lesson.owner),
        *(("tag", v) for v in a.tags),
        *(("service", v) for v in a.services),
        *(("component", v) for v in a.components),
        # Not a search filter: lets `lessons.due_for_review` find the due ones by index.
        *((("review_by", lesson.review_by.isoformat()),) if lesson.review_by else ()),
    }


def index(session: Session, lesson: Lesson) -> None:
    """Bring a lesson's search text and facet values in step with its working copy."""
    c = lesson.context
    body = "\n".join(
        (lesson.statement, c.what_happened, c.expected, c.actual, *c.contributing_conditions)
    )
    a = lesson.applicability
    scope = " ".join((*a.tags, *a.services, *a.components))
    row = session.scalars(
        select(LessonSearchRow).where(LessonSearchRow.lesson_id == lesson.id)
    ).one_or_none()
    if row is None:
        session.add(
            LessonSearchRow(lesson_id=lesson.id, title=lesson.title, scope=scope, body=body)
        )
    else:
        row.title, row.scope, row.body = lesson.title, scope, body
    session.execute(delete(LessonFacetRow).where(LessonFacetRow.lesson_id == lesson.id))
    session.add_all(
        LessonFacetRow(lesson_id=lesson.id, facet=facet, value=value)
        for facet, value in sorted(_facet_values(lesson))
    )
    session.flush()


def _tsquery_term(term: Term) -> ColumnElement[Any]:
    return func.websearch_to_tsquery(_ENGLISH, literal(websearch_text(term)))


def _tsquery(query: Query, *, rank_only: bool = False) -> ColumnElement[Any]:
    """The query as a tsquery; `rank_only` leaves out the exclusions, which ts_rank scores as 0."""
    result: ColumnElement[Any] | None = None
    for clause in query.clauses:
        either = _tsquery_term(clause[0])
        for term in clause[1:]:
            either = func.tsquery_or(either, _tsquery_term(term))
        result = either if result is None else func.tsquery_and(result, either)
    assert result is not None  # an empty query never reaches the database
    if query.excluded and not rank_only:
        unwanted = _tsquery_term(query.excluded[0])
        for term in query.excluded[1:]:
            unwanted = func.tsquery_or(unwanted, _tsquery_term(term))
        result = func.tsquery_and(result, func.tsquery_not(unwanted))
    return result


def _matching(session: Session, query: Query | None) -> Select[Any, Any]:
    """(lesson_id, score) of every lesson the text matches; every lesson when there is none."""
    s = LessonSearchRow
    if query is None:
        return select(s.lesson_id, literal(0.0).label("score"))
    if session.get_bind().dialect.name == "postgresql":
        rank = func.ts_rank(_DOCUMENT, _tsquery(query, rank_only=True))
        return select(s.lesson_id, rank.label("score")).where(_DOCUMENT.op("@@")(_tsquery(query)))
    fts: ColumnElement[Any] = literal_column("lesson_search_fts")
    # bm25 is lower for better matches; negated so both backends sort by score descending.
    score = -func.bm25(fts, *_BM25_WEIGHTS)
    return (
        select(s.lesson_id, score.label("score"))
        .select_from(_FTS)
        .join(s, s.id == literal_column("lesson_search_fts.rowid"))
        .where(fts.op("MATCH")(literal(to_fts5(query))))
    )


def _filtered(stmt: Select[Any, Any], filters: Mapping[str, Sequence[str]]) -> Select[Any, Any]:
    for facet, values in filters.items():
        if facet not in FACETS:
            raise ValueError(f"unknown search filter {facet!r}; known: {', '.join(FACETS)}")
        if values:
            f = LessonFacetRow
            stmt = stmt.where(
                exists().where(
                    f.lesson_id == LessonSearchRow.lesson_id,
                    f.facet == facet,
                    f.value.in_(list(values)),
                )
            )
    return stmt


def search(session: Session, request: SearchRequest) -> SearchPage:
    """Lessons matching the text and every filter (values of one filter are alternatives), best
    first (ties and plain listings by id), with facet counts over all of them."""
    text = (request.text or "").strip()
    query = parse(text) if text else None
    if query is not None and query.empty:
        return SearchPage(hits=(), total=0, facets={}, next_offset=None)
    matched = _filtered(_matching(session, query), request.filters).subquery()
    total = session.scalar(select(func.count()).select_from(matched)) or 0
    page = session.execute(
        select(matched.c.lesson_id, matched.c.score)
        .order_by(matched.c.score.desc(), matched.c.lesson_id)
        .limit(request.limit)
        .offset(request.offset)
    ).all()
    docs = {
        lesson_id: doc
        for lesson_id, doc in session.execute(
            select(LessonRow.id, LessonRow.doc).where(LessonRow.id.in_([r[0] for r in page]))
        ).all()
    }
    counts: dict[str, dict[str, int]] = {}
    f = LessonFacetRow
    for facet, value, count in session.execute(
        select(f.facet, f.value, func.count())
        .where(f.lesson_id.in_(select(matched.c.lesson_id)))
        .group_by(f.facet, f.value)
        .order_by(func.count().desc(), f.facet, f.value)
    ).all():
        counts.setdefault(facet, {})[value] = count
    end = request.offset + len(page)
    return SearchPage(
        hits=tuple(SearchHit(from_doc(Lesson, docs[i]), float(score)) for i, score in page),
        total=total,
        facets={name: counts[name] for name in FACETS if name in counts},
        next_offset=end if end < total else None,
    )
