"""The process that runs the user's code (env.py, revisions): worker side and client."""
