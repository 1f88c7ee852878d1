"""The GitHub connector: pull-request webhooks in, a lessons checklist in each PR body out."""
