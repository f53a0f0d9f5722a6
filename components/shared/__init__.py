"""What the components share and the program uses beside them: placement, tags and child
options, diagnostic settings, role assignments, the stack outputs and the registry login.
No ComponentResource lives here."""
