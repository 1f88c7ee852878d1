"""Operations: the correlation id, JSON logs, OpenTelemetry tracing and stage instrumentation."""
