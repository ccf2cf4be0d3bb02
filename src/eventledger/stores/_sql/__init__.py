"""What the SQL backends share: the read side, command log, process storage and API keys
written once against a :class:`~eventledger.stores._sql.dialect.Dialect`, which each
backend package (``stores/sqlite``, ``stores/postgres``) supplies with its own SQL."""
