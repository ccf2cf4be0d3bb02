"""The Orders example: the reference domain of the docs, the demo and the tests."""
