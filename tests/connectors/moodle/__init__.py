"""Moodle connector tests."""
