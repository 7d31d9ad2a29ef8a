"""Benchmarks of the sync engine against fake providers on loopback (`make bench`)."""
