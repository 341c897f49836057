"""The local platform: broker, warehouse and the project's own processes, without Docker."""
