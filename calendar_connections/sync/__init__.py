"""The sync engine: plain functions over a database session and a provider client."""
