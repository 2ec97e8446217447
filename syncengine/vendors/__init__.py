"""What is true of each vendor whoever uses it: pure data and functions, importable by the receiver, the
connectors, the tasks and the simulators alike (what the vendor side must hold, its names and tables)."""
