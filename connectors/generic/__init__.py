"""The generic source: Standard Webhooks-signed canonical incident or work-item JSON."""
