"""`/api/v1`: one module per resource; each module's `router` is mounted by `router.http.app`.

May import the shared use cases (`router.lessons`), the composition root's `Runtime` and the
store; never the CLI, the demo or another API module's internals.
"""
