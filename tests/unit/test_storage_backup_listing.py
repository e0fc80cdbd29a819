"""Backups in a dir storage's dump folder are listed as backup volumes."""

from pct.paths import Paths
from pct.storage import get_storage


def test_dump_folder_lists_archives_only(tmp_path):
    dump = tmp_path / "var/lib/vz/dump"
    dump.mkdir(parents=True)
    (dump / "vzdump-lxc-101-2026_12_04-10_00_00.tar.zst").write_bytes(b"x" * 10)
    (dump / "vzdump-lxc-101-2026_12_04-10_00_00.log").write_text("log\n")
    (dump / "vzdump-lxc-102-2026_12_05-11_00_00.tar").write_bytes(b"y")
    (dump / "notes.txt").write_text("not a backup\n")

    storage = get_storage(Paths(tmp_path), "local")
    everything = {(info.volname, info.content, info.format, info.size, info.vmid)
                  for info in storage.list_content()}
    assert everything == {
        ("backup/vzdump-lxc-101-2026_12_04-10_00_00.tar.zst", "backup", "tar.zst", 10, 101),
        ("backup/vzdump-lxc-102-2026_12_05-11_00_00.tar", "backup", "tar", 1, 102),
    }
    assert [info.volname for info in storage.list_content(102)] == \
        ["backup/vzdump-lxc-102-2026_12_05-11_00_00.tar"]
