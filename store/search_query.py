"""The lesson search language, parsed once and rendered safely for FTS5 and PostgreSQL.

Words are ANDed; `"two words"` is a phrase; `or` between two terms makes them alternatives;
`-word` or `-"a phrase"` excludes. Every other character only separates words, so no input can
produce a syntax error in either backend: each term is reduced to letters and digits before it
is quoted (FTS5) or handed to `websearch_to_tsquery` as a bound parameter (PostgreSQL).
"""

import re
from dataclasses import dataclass

MAX_QUERY_CHARS = 500
MAX_TERMS = 32

# PostgreSQL's `english` stop words; FTS5 indexes them, so a query must not require them either.
_STOP_WORDS = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom
    this that these those am is are was were be been being have has had having do does did
    doing a an the and but if or because as until while of at by for with about against between
    into through during before after above below to from up down in out on off over under again
    further then once here there when where why how all any both each few more most other some
    such no nor not only own same so than too very s t can will just don should now
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())

# Letters and digits, as FTS5's unicode61 tokenizer and PostgreSQL's parser both split words.
_TOKEN = re.compile(r"[^\W_]+")
_PIECE = re.compile(r'(-?)"([^"]*)"?|(\S+)')


class QueryTooLongError(ValueError):
    """The search text exceeds the length or term limit."""


@dataclass(frozen=True, slots=True)
class Term:
    """A word or an exact phrase (tokens in order); `negated` excludes what it matches."""

    tokens: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    """Clauses that must all hold, each a set of alternatives, and terms that must not occur."""

    clauses: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...]

    @property
    def empty(self) -> bool:
        """No positive term survived parsing: such a query matches nothing."""
        return not self.clauses


def _term(text: str, negated: bool) -> Term | None:
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    # Stop words at the edges of a phrase add nothing on PostgreSQL, which drops them.
    while tokens and tokens[0] in STOP_WORDS:
        tokens.pop(0)
    while tokens and tokens[-1] in STOP_WORDS:
        tokens.pop()
    return Term(tuple(tokens), negated) if tokens else None


def parse(text: str) -> Query:
    """Parse user search text; never fails on content, only on size."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryTooLongError(f"search text is longer than {MAX_QUERY_CHARS} characters")
    clauses: list[list[Term]] = []
    excluded: list[Term] = []
    pending_or = False
    for match in _PIECE.finditer(text):
        minus, phrase, word = match.groups()
        if word is not None and word.lower() == "or":
            pending_or = bool(clauses)
            continue
        negated = bool(minus) if word is None else word.startswith("-")
        term = _term(phrase if word is None else word, negated)
        if term is None:
            continue
        if negated:
            excluded.append(term)
        elif pending_or:
            clauses[-1].append(term)
        else:
            clauses.append([term])
        pending_or = False
    if sum(map(len, clauses)) + len(excluded) > MAX_TERMS:
        raise QueryTooLongError(f"search text has more than {MAX_TERMS} terms")
    return Query(tuple(tuple(c) for c in clauses), tuple(excluded))


def _fts5_term(term: Term) -> str:
    # Tokens hold only letters and digits, so the quotes cannot be broken out of.
    return '"' + " ".join(term.tokens) + '"'


def to_fts5(query: Query) -> str:
    """An FTS5 MATCH expression with every term quoted."""
    positive = " AND ".join(
        "(" + " OR ".join(_fts5_term(t) for t in clause) + ")" for clause in query.clauses
    )
    if not query.excluded:
        return positive
    return f"({positive}) NOT (" + " OR ".join(_fts5_term(t) for t in query.excluded) + ")"


def websearch_text(term: Term) -> str:
    """One term as `websearch_to_tsquery` input (a word, or a quoted phrase)."""
    joined = " ".join(term.tokens)
    return f'"{joined}"' if len(term.tokens) > 1 else joined
