"""`cairn docs asyncapi`: the AsyncAPI document of the pipeline's broker messages."""

import json
from pathlib import Path

import click

from router.cli.support import load_settings


@click.group("docs")
def docs_group() -> None:
    """Machine-readable descriptions of Cairn's interfaces."""


@docs_group.command("asyncapi")
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout."
)
@click.option(
    "--schema-version",
    type=click.Choice(["3.0.0", "2.6.0"]),
    default="3.0.0",
    show_default=True,
    help="The AsyncAPI version of the document.",
)
def asyncapi(output: Path | None, schema_version: str) -> None:
    """The AsyncAPI document of the RabbitMQ queues (CAIRN_BROKER_URL and _PREFIX name them)."""
    try:
        from router.asyncapi import DEFAULT_URL, document
    except ImportError as exc:
        raise click.ClickException("needs the rabbit extra: pip install 'cairn[rabbit]'") from exc
    settings = load_settings()
    url = DEFAULT_URL
    if settings.broker_mode and settings.broker_url is not None:
        url = settings.broker_url.get_secret_value()
    text = json.dumps(
        document(prefix=settings.broker_prefix, url=url, schema_version=schema_version),
        indent=2,
    )
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}")
