"""The lessons export file: YAML or JSON, written and read back with errors at their place."""

import json
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from core.base import CoreModel
from core.lesson import Lesson
from core.yaml_strict import StrictLoader

FORMAT = "cairn.lessons/1"
Kind = Literal["yaml", "json"]


class LessonFile(CoreModel):
    """An export: `format` names this schema's version; `lessons` are Lesson documents (published
    versions first, then each lesson's working copy when it differs)."""

    format: Literal["cairn.lessons/1"] = "cairn.lessons/1"
    lessons: tuple[Lesson, ...]


def schema() -> dict[str, Any]:
    """The JSON Schema of an export file (its `$defs.Lesson` is the Lesson model's schema)."""
    return LessonFile.model_json_schema()


@dataclass(frozen=True, slots=True)
class FileProblem:
    """One problem in a lessons file, at a line when the format tells (YAML) or else an entry."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.message}"
            if self.line
            else f"{self.file}: {self.message}"
        )


class LessonFileError(Exception):
    """The file cannot be imported; `problems` lists every one found."""

    def __init__(self, problems: list[FileProblem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = tuple(problems)


def dump(entries: list[Lesson], kind: Kind) -> str:
    """The export document as YAML or JSON text."""
    doc = {"format": FORMAT, "lessons": [e.model_dump(mode="json") for e in entries]}
    if kind == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def _line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The line of the YAML node at `loc` (or of its nearest existing parent)."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = [v for k, v in node.value if getattr(k, "value", None) == part]
            if not found:
                break
            node = found[0]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
    return None if node is None else node.start_mark.line + 1


def kind_of(name: str, text: str) -> Kind:
    """JSON for `.json` files (or text starting like JSON), YAML otherwise."""
    if name.endswith(".json") or (
        not name.endswith((".yaml", ".yml")) and text.lstrip()[:1] in "{["
    ):
        return "json"
    return "yaml"


def _parse(text: str, file: str, kind: Kind) -> tuple[Any, yaml.Node | None]:
    try:
        return _parse_text(text, file, kind)
    except LessonFileError:
        raise
    except RecursionError as exc:
        problem = FileProblem(file, None, "nested too deeply to be a lessons file")
        raise LessonFileError([problem]) from exc
    except ValueError as exc:  # past Python's digit limit for integers (JSON or YAML)
        problem = FileProblem(file, None, f"unreadable: {exc}")
        raise LessonFileError([problem]) from exc


def _parse_text(text: str, file: str, kind: Kind) -> tuple[Any, yaml.Node | None]:
    if kind == "json":
        try:
            return json.loads(text), None
        except json.JSONDecodeError as exc:
            raise LessonFileError(
                [FileProblem(file, exc.lineno, f"invalid JSON: {exc.msg}")]
            ) from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        return yaml.load(text, Loader=StrictLoader), root  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise LessonFileError([FileProblem(file, line, f"invalid YAML: {exc.problem}")]) from exc


def load(text: str, file: str, kind: Kind) -> list[Lesson]:
    """Every entry of an export file (or of a bare list of lessons), each validated; raises
    LessonFileError listing all problems, so nothing is imported from a partly valid file."""
    data, root = _parse(text, file, kind)
    prefix: tuple[int | str, ...] = ()
    if isinstance(data, dict):
        if data.get("format", FORMAT) != FORMAT:
            line = _line(root, ("format",))
            raise LessonFileError([FileProblem(file, line, f"format must be {FORMAT!r}")])
        data, prefix = data.get("lessons"), ("lessons",)
    if not isinstance(data, list):
        message = "expected a list of lessons, or a mapping with `format` and `lessons`"
        raise LessonFileError([FileProblem(file, 1 if root is not None else None, message)])
    problems: list[FileProblem] = []
    entries: list[Lesson] = []
    seen: dict[tuple[str, int], int] = {}
    for number, raw in enumerate(data):
        label = f"entry {number}" + (
            f" (id {raw['id']!r})" if isinstance(raw, dict) and "id" in raw else ""
        )
        try:
            entry = Lesson.model_validate(raw, strict=False)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                loc = tuple(error["loc"])
                where = ".".join(map(str, loc)) or "entry"
                line = _line(root, (*prefix, number, *loc))
                problems.append(FileProblem(file, line, f"{label}: {where}: {error['msg']}"))
            continue
        key = (entry.id, entry.version)
        if key in seen:
            message = f"{label}: {entry.id}@{entry.version} repeats entry {seen[key]}"
            problems.append(FileProblem(file, _line(root, (*prefix, number)), message))
        seen.setdefault(key, number)
        entries.append(entry)
    if problems:
        raise LessonFileError(problems)
    return entries
