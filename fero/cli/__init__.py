"""The command line: `fero` (serve, add, get, setup, read, update) and `fero-ls`."""
