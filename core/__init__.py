"""Cairn's shared vocabulary: lessons, work items, placements, signals and incidents."""
