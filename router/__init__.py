"""The running service, one subpackage per concern.

`http/` (FastAPI app, webhook ingress, `/api/v1`), `cli/` (the `cairn` command), `demo/`,
`lessons/` (use cases the API and the CLI share), `stages/` (pipeline stages), `transport/`
(embedded or broker delivery), `ruleset/` (the rules in force); `compose.py` is the one
composition root, `pipeline.py` the dispatcher, `settings.py` the environment.
"""
