"""The `pivot` command line: thin click commands over `pivot.api`."""
