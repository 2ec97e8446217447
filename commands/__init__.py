"""The command line (`syncengine ...`, `python -m syncengine`), above the tasks, the connectors and the
simulators, which it drives; nothing below imports it."""
