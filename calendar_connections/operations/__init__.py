"""What the API and the CLI do: plain functions over a session that flush; the caller commits."""
