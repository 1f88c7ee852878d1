"""Jira connector tests."""
