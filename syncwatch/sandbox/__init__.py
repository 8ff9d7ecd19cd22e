"""The built-in vendor emulator (DESIGN §11): documented shapes, a pretend connector, faults."""

from syncwatch.sandbox.app import create_app

__all__ = ["create_app"]
