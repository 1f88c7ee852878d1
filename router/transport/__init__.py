"""Transports deliver pipeline messages to the Dispatcher: embedded (database) or RabbitMQ."""

from typing import Protocol


class Transport(Protocol):
    """Moves outbox messages to stage handlers; started and stopped with the process."""

    mode: str

    async def start(self) -> None:
        """Connect and start relaying and/or consuming."""
        ...

    async def stop(self) -> None:
        """Stop taking new work; let work in flight finish."""
        ...

    def notify(self) -> None:
        """New work was committed: look now instead of at the next poll."""
        ...

    async def problem(self) -> str | None:
        """None when ready, else why not (for `/readyz`)."""
        ...
