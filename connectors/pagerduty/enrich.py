"""Reading postmortem findings out of incident notes and custom fields (pure).

The note convention: a note line that starts with one of these prefixes (case-insensitive)
contributes to the incident; other lines are conversation and are ignored.

- `Postmortem: <text>`: the postmortem summary; it marks a resolved incident POSTMORTEM_DONE.
- `Postmortem link: <url>`: where the postmortem document lives.
- `Contributing factor: <text>`: one contributing factor per line.
- `Action item: <text>`: one action item per line.

Custom fields (by name, case-insensitive): `postmortem_url`; `root_cause` (the summary when no
`Postmortem:` note gave one); `contributing_factors` and `action_items` (a list, or one per line).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from connectors import fields
from core.incident import Incident, IncidentStatus

_PREFIXES = {
    "postmortem:": "summary",
    "postmortem link:": "link",
    "contributing factor:": "factor",
    "action item:": "action",
}


@dataclass(frozen=True, slots=True)
class Findings:
    """What notes or custom fields say about the incident's postmortem."""

    summary: str = ""
    postmortem_url: str | None = None
    contributing_factors: tuple[str, ...] = ()
    action_items: tuple[str, ...] = ()

    @property
    def postmortem_done(self) -> bool:
        """A postmortem summary was written."""
        return bool(self.summary)


def read_notes(contents: Iterable[str]) -> Findings:
    """The findings in notes, oldest note first."""
    found: dict[str, list[str]] = {kind: [] for kind in _PREFIXES.values()}
    for content in contents:
        for line in content.splitlines():
            stripped = line.strip()
            for prefix, kind in _PREFIXES.items():
                if stripped.lower().startswith(prefix):
                    value = stripped[len(prefix) :].strip()
                    if value:
                        found[kind].append(value)
                    break
    links = [link for link in map(fields.url, found["link"]) if link is not None]
    return Findings(
        summary=fields.text("\n".join(found["summary"])),
        postmortem_url=links[-1] if links else None,
        contributing_factors=_texts(found["factor"]),
        action_items=_texts(found["action"]),
    )


def read_custom_fields(values: Mapping[str, object]) -> Findings:
    """The findings in custom fields, keyed by field name."""
    by_name = {name.strip().lower(): value for name, value in values.items()}
    return Findings(
        summary=fields.text(by_name.get("root_cause")),
        postmortem_url=fields.url(by_name.get("postmortem_url")),
        contributing_factors=_texts(_lines(by_name.get("contributing_factors"))),
        action_items=_texts(_lines(by_name.get("action_items"))),
    )


def merge(incident: Incident, findings: Findings) -> Incident:
    """The incident with the findings added; a postmortem summary completes a resolved one."""
    status = incident.status
    if findings.postmortem_done and status is IncidentStatus.RESOLVED:
        status = IncidentStatus.POSTMORTEM_DONE
    return Incident.model_validate(
        {
            # Only what was set: a thin event's default severity must not read as a new one.
            **incident.model_dump(include=incident.model_fields_set),
            "status": status,
            "summary": findings.summary or incident.summary,
            "postmortem_url": incident.postmortem_url or findings.postmortem_url,
            "contributing_factors": _texts(
                (*incident.contributing_factors, *findings.contributing_factors)
            ),
            "action_items": _texts((*incident.action_items, *findings.action_items)),
        },
        strict=False,
    )


def _lines(value: object) -> list[str]:
    if isinstance(value, str):
        return value.splitlines()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in map(fields.text, values) if t))
