"""connector: configuration-driven order connector for marketplace integrations."""

__version__ = "0.1.0"
