"""Adapters the service and worker share (object storage, database); the core never imports them."""
