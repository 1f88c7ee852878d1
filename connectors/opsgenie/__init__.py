"""Opsgenie (legacy, end of support 2027-04-05): outgoing webhooks checked by a shared token."""
