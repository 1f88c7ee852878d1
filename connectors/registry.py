"""The typed registry of inbound connectors: route name → verifier, parser and secret."""

from collections.abc import Callable
from dataclasses import dataclass

from connectors.base import Parser, Verifier
from connectors.generic import webhook as generic


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One inbound source: its package, the variable holding its secret, how to verify and parse."""

    name: str
    package: str
    secret_env: str
    verifier: Callable[[str], Verifier]
    parse: Parser


SOURCES: dict[str, SourceSpec] = {
    "generic": SourceSpec(
        name="generic",
        package="connectors.generic",
        secret_env="CAIRN_GENERIC_WEBHOOK_SECRET",  # noqa: S106 (a variable name)
        verifier=generic.GenericVerifier,
        parse=generic.parse,
    ),
}
