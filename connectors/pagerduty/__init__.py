"""PagerDuty: v3 webhooks (HMAC-SHA256 signatures) and a REST client for notes and custom fields."""
