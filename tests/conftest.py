"""The suite's fixtures live in the support package (tests/support/), loaded here."""

pytest_plugins = [
    "tests.support.app",
    "tests.support.connections",
    "tests.support.google",
    "tests.support.sandbox",
    "tests.support.stack",
]
