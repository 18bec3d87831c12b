"""What the user chooses: the shared sidebar, the bundle opener, sequences A and B, and widgets
whose value lives in the link."""
