"""``python -m eventledger``: the command line."""

from eventledger.cli import main

main()
