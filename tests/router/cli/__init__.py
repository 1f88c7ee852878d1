"""Tests for Cairn."""
