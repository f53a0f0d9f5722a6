"""What the components share and the program uses beside them: placement, tags and child
options, diagnostic settings, role assignments, the stack outputs, the registry login and
the Stream Analytics query. No ComponentResource lives here."""
