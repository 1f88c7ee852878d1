"""One package per outside system: webhook verification and parsing, outbound clients, fakes."""
