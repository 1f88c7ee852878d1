"""The HTTP surface: the FastAPI app, webhook ingress, health and metrics, and `/api/v1`.

May import the shared use cases (`router.lessons`), the composition root and everything below it;
never the CLI or the demo.
"""
