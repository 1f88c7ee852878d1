"""Jira Cloud: issue webhooks in, lessons out as checklist items or sub-tasks, marks read back."""
