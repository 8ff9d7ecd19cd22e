"""Vendor adapters behind the Protocols of ``vendors.base``; ``vendors.registry`` finds them."""
