"""Starting, watching, restarting and draining workers; the lifecycle state machine."""
