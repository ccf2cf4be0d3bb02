"""Example domains shipped with eventledger: the reference Orders service (the docs, the demo
and the tests use it)."""
