"""Chameleon: a durable, governed workflow engine for agents, humans and scripts."""

__version__ = "0.1.0"
