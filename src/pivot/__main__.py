"""`python -m pivot`: the same as the `pivot` command."""

from pivot.cli.main import main

if __name__ == "__main__":
    main()
