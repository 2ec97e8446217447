"""`python -m syncengine`: the Procfile's way to run the command line (commands.cli) without the console
script installed. The one import from the core upward, and only when run as a program."""

import sys

from commands.cli import main

sys.exit(main())
