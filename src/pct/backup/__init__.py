"""Backups of containers: archive writer and reader, backup modes, restore, retention."""
