"""storage.cfg parsing, volume ids and the default local storage."""

import pytest

from pct.errors import StorageError
from pct.paths import Paths
from pct.storage import get_storage, load_storage_config, parse_storage_config, parse_volume_id

REAL_CFG = """dir: local
\tpath /var/lib/vz
\tcontent iso,vztmpl,backup

lvmthin: local-lvm
\tthinpool data
\tvgname pve
\tcontent rootdir,images

nfs: backups
\texport /srv/backup
\tpath /mnt/pve/backups
\tserver 192.0.2.10
\tcontent backup
\tprune-backups keep-last=3,keep-weekly=2
"""


def test_parse_keeps_every_stanza():
    storages = parse_storage_config(REAL_CFG)
    assert list(storages) == ["local", "local-lvm", "backups"]
    assert storages["local-lvm"].type == "lvmthin"
    assert storages["backups"].properties["prune-backups"] == "keep-last=3,keep-weekly=2"
    assert storages["local"].content == {"iso", "vztmpl", "backup"}


def test_default_local_storage_without_file(tmp_path):
    storages = load_storage_config(Paths(tmp_path))
    assert storages["local"].properties["path"] == "/var/lib/vz"
    assert "rootdir" in storages["local"].content


def test_dir_path_is_below_root(tmp_path):
    storage = get_storage(Paths(tmp_path), "local")
    assert storage.template_path("vztmpl/a.tar.zst") == tmp_path / "var/lib/vz/template/cache/a.tar.zst"


def test_unsupported_type_rejects_operations(tmp_path):
    (tmp_path / "etc/pve").mkdir(parents=True)
    (tmp_path / "etc/pve/storage.cfg").write_text(REAL_CFG)
    storage = get_storage(Paths(tmp_path), "local-lvm")
    with pytest.raises(StorageError, match="not supported on this host for storage type 'lvmthin'"):
        storage.alloc_volume(100, 1 << 30, unprivileged=True)


def test_missing_storage_is_named(tmp_path):
    with pytest.raises(StorageError, match="storage 'nope' does not exist"):
        get_storage(Paths(tmp_path), "nope")


@pytest.mark.parametrize("text", ["dir local\n", "\tpath /x\n", "dir: local\nbogus line\n"])
def test_malformed_cfg_names_line(text):
    with pytest.raises(StorageError, match="storage.cfg line"):
        parse_storage_config(text)


def test_volume_id_parsing():
    assert parse_volume_id("local:100/vm-100-disk-0.raw") == ("local", "100/vm-100-disk-0.raw")
    with pytest.raises(StorageError, match="unable to parse volume ID"):
        parse_volume_id("/abs/path")


def test_template_volume_cannot_escape(tmp_path):
    storage = get_storage(Paths(tmp_path), "local")
    for bad in ("vztmpl/../../etc/passwd", "vztmpl/..", "images/x"):
        with pytest.raises(StorageError):
            storage.template_path(bad)
