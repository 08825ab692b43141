"""``python -m plait.cli``: the same as the ``plait`` command."""

from . import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
