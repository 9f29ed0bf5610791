"""The sensor simulator: readings like a fleet publishes them, paced, buffered while offline."""
