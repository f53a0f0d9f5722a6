"""What the components share and the program uses beside them: placement, tags and child
options, diagnostic settings, role assignments, the stack outputs, the registry login, the
Stream Analytics query and content hashes. No ComponentResource lives here."""
