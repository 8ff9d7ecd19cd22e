"""syncwatch: an integration health monitor for MAP → CRM lead syncs."""

__version__ = "0.1.0.dev0"
