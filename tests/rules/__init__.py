"""Tests for the rule language: loading, templates, conditions, precedence and the engine."""
