"""The fault suite's checker: what was asked for against what the targets recorded.

Lost: an effect id a delivery answered 2xx asked for, with no effect recorded. Duplicated: an
effect id recorded more than once. Unexpected: an effect id recorded that no accepted delivery
asked for. Pure: it reads a recorded run (`Recording`), so it can be checked on made-up runs.
"""

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Recorded:
    """One effect as recorded: its id, the target's handle, and what the target saw."""

    effect_id: str
    handle: str
    how: str


@dataclass
class Recording:
    """A run: the effect ids each accepted delivery asked for, and every recorded effect."""

    expected: dict[str, str] = field(default_factory=dict)
    """effect id → the delivery id that asked for it."""
    effects: list[Recorded] = field(default_factory=list)

    def dump(self, path: Path) -> None:
        """Write the run as JSON (for the post-mortem of a failed run)."""
        data = {
            "expected": self.expected,
            "effects": [[e.effect_id, e.handle, e.how] for e in self.effects],
        }
        path.write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: Path) -> "Recording":
        """Read a run written by `dump`."""
        data: dict[str, Any] = json.loads(path.read_text())
        effects = [Recorded(str(i), str(h), str(w)) for i, h, w in data["effects"]]
        return cls({str(k): str(v) for k, v in data["expected"].items()}, effects)


@dataclass(frozen=True)
class Verdict:
    """The checker's findings, each with the effect ids concerned."""

    lost: tuple[str, ...]
    duplicated: Mapping[str, tuple[Recorded, ...]]
    unexpected: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """True when nothing was lost, duplicated or unexpected."""
        return not (self.lost or self.duplicated or self.unexpected)

    def lines(self, expected: Mapping[str, str]) -> Iterable[str]:
        """One line per finding, naming the effect id, its delivery and the target's handles."""
        for effect_id in self.lost:
            yield f"lost: {effect_id} (delivery {expected[effect_id]}): no effect recorded"
        for effect_id, copies in self.duplicated.items():
            seen = "; ".join(f"{c.handle}: {c.how}" for c in copies)
            yield f"duplicated: {effect_id} x{len(copies)} ({seen})"
        for effect_id in self.unexpected:
            yield f"unexpected: {effect_id}: recorded, asked for by no accepted delivery"


def check(recording: Recording) -> Verdict:
    """Compare what accepted deliveries asked for with what the targets recorded."""
    per_id = Counter(e.effect_id for e in recording.effects)
    lost = tuple(sorted(i for i in recording.expected if per_id[i] == 0))
    duplicated = {
        effect_id: tuple(e for e in recording.effects if e.effect_id == effect_id)
        for effect_id, count in sorted(per_id.items())
        if count > 1
    }
    unexpected = tuple(sorted(i for i in per_id if i not in recording.expected))
    return Verdict(lost, duplicated, unexpected)
