"""Manage Linux system containers through LXC, the way Proxmox VE's pct does."""

__version__ = "0.1.0"
