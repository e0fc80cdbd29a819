"""The storage library: storage.cfg, volume ids and one plugin per storage type."""

from pct.storage.cfg import StorageDefinition, load_storage_config, parse_storage_config
from pct.storage.plugins import Storage, get_storage, local_file, parse_volume_id

__all__ = [
    "Storage",
    "StorageDefinition",
    "get_storage",
    "local_file",
    "load_storage_config",
    "parse_storage_config",
    "parse_volume_id",
]
