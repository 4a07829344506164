"""One module per CLI command: each takes Settings (or plain arguments) and returns an exit code."""
