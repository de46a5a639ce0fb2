"""The command line: one short command per Platform verb."""
