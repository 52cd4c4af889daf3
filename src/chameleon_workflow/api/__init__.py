"""The HTTP adapter: thin routes over the engine."""
