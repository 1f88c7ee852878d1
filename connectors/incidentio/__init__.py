"""incident.io: Svix/Standard Webhooks deliveries and a client re-fetching thin events."""
