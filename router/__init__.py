"""The running service: settings, HTTP ingress, transports, pipeline stages and the CLI."""
