"""`cairn demo`: the whole loop against the contract fakes, one module per outside system.

May import the HTTP app (it serves Cairn for real), the composition root and the lesson use
cases; the CLI imports it, never the reverse.
"""
