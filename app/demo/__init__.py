"""Realistic, deterministic demo activity for a fresh shop (`python -m app demo-data`)."""

from app.demo.generate import DemoData, generate
from app.demo.load import bulk_load, delete_all, has_data
from app.demo.replay import replay

__all__ = ["DemoData", "bulk_load", "delete_all", "generate", "has_data", "replay"]
