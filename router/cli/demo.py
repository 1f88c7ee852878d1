"""`cairn demo`: the whole loop on the embedded default against the contract fakes."""

import sys

import click


@click.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep the demo database here (default: a temporary directory).",
)
@click.option(
    "--keep-serving",
    is_flag=True,
    help="Afterwards, keep the service and its dashboard up with the demo's data (Ctrl-C stops).",
)
def demo(workdir: str | None, keep_serving: bool) -> None:
    """Run the whole loop on the embedded default and print what happened."""
    from router.demo.run import run_demo

    sys.exit(run_demo(workdir, keep_serving=keep_serving))
