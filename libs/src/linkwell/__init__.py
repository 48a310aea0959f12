"""Shared foundations of the Linkwell services."""
