"""xAPI: completion read from a learning record store's statements, polled or pushed to Cairn."""
