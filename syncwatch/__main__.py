"""``python -m syncwatch`` is the ``syncwatch`` command."""

from syncwatch.cli import main

main()
