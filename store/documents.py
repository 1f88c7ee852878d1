"""Conversion between core models and the JSON documents kept in `doc` columns."""

from typing import Any, TypeVar

from core.base import CoreModel

M = TypeVar("M", bound=CoreModel)


def to_doc(model: CoreModel) -> dict[str, Any]:
    """JSON-safe dict of a model."""
    return model.model_dump(mode="json")


def from_doc(cls: type[M], doc: dict[str, Any]) -> M:
    """Rebuild a model from its stored document (JSON types, so lax parsing of strings)."""
    return cls.model_validate(doc, strict=False)
