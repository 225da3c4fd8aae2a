"""uebench's built-in plugins. Registered through the same hooks a third-party package uses."""
