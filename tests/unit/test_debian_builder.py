"""The clean-up of a debootstrapped tree before it is packed as a template."""

import stat

from pct.appliance.debian import _clean_tree


def test_clean_tree_resets_copied_modes(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("hostname", "machine-id", "resolv.conf"):
        (etc / name).write_text("from the host\n")
        (etc / name).chmod(0o755)

    _clean_tree(tmp_path)

    assert stat.S_IMODE((etc / "hostname").stat().st_mode) == 0o644
    assert stat.S_IMODE((etc / "machine-id").stat().st_mode) == 0o444
    assert stat.S_IMODE((etc / "resolv.conf").stat().st_mode) == 0o644
    assert (etc / "hostname").read_text() == "localhost\n"
    assert (etc / "machine-id").read_text() == ""
