"""Lesson text a template or an author could use to make a placed item read as something else."""

from hypothesis import strategies as st

HOSTILE = st.lists(
    st.sampled_from(
        ["N/A", "n/a", "N / A", ":", ": ", " reason", "Title", "\u202e", "\u2066", "\u200f", "x"]
    ),
    min_size=1,
    max_size=8,
).map("".join)
"""Dismissal-looking fragments and bidirectional controls, joined in any order."""

BIDI = "\u202e\u2066\u200f"
"""The bidirectional controls among them, none of which may survive into a target."""
