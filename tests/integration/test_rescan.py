"""pct rescan: volumes that no config refers to come back as unused[n]; protection keeps them."""

from storage_fixtures import btrfs  # noqa: F401  (fixture)


def test_rescan_adds_orphans(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    host.pct("alloc", "local", vmid, f"vm-{vmid}-disk-5.raw", "16M", tool="pvesm")
    host.pct("alloc", "local", vmid, f"subvol-{vmid}-disk-6", "0", tool="pvesm")
    before = host.conf_text(vmid)

    dry = host.pct("rescan", "--dryrun").stdout.splitlines()
    assert dry == [
        f"CT {vmid}: would add unreferenced volume 'local:{vmid}/subvol-{vmid}-disk-6' as 'unused0' to config",
        f"CT {vmid}: would add unreferenced volume 'local:{vmid}/vm-{vmid}-disk-5.raw' as 'unused1' to config",
    ]
    assert host.conf_text(vmid) == before

    added = host.pct("rescan", "--vmid", vmid).stdout.splitlines()
    assert added == [line.replace("would add", "add") for line in dry]
    text = host.conf_text(vmid)
    assert f"unused0: local:{vmid}/subvol-{vmid}-disk-6\n" in text
    assert f"unused1: local:{vmid}/vm-{vmid}-disk-5.raw\n" in text
    assert text.count(f"local:{vmid}/vm-{vmid}-disk-0.raw") == 1


def test_rescan_nothing_to_add(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--mp0", "local:1,mp=/data")
    host.pct("set", vmid, "--delete", "mp0")
    before = host.conf_text(vmid)
    assert f"unused0: local:{vmid}/vm-{vmid}-disk-1.raw" in before

    result = host.pct("rescan")
    assert result.stdout.strip() == "no unreferenced volumes found"
    assert host.conf_text(vmid) == before


def test_rescan_skips_volumes_without_config(host, busybox_template):
    orphan_owner = host.new_vmid()
    host.pct("alloc", "local", orphan_owner, f"vm-{orphan_owner}-disk-0.raw", "16M", tool="pvesm")
    result = host.pct("rescan")
    assert result.stdout.strip() == "no unreferenced volumes found"
    assert not host.conf_path(orphan_owner).exists()


def test_rescan_unknown_container(host):
    result = host.pct("rescan", "--vmid", "777777", check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == "Configuration file 'etc/pve/lxc/777777.conf' does not exist"


def test_rescan_finds_btrfs_subvolume(host, busybox_template, btrfs):  # noqa: F811
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--storage", "btr")
    host.pct("alloc", "btr", vmid, f"subvol-{vmid}-disk-3", "64M", tool="pvesm")
    result = host.pct("rescan", "--vmid", vmid)
    assert result.stdout.strip() == (f"CT {vmid}: add unreferenced volume 'btr:{vmid}/subvol-{vmid}-disk-3' "
                                     "as 'unused0' to config")
    assert f"unused0: btr:{vmid}/subvol-{vmid}-disk-3\n" in host.conf_text(vmid)


def test_protection_blocks_pvesm_free(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--protection", "1")
    host.pct("alloc", "local", vmid, f"vm-{vmid}-disk-4.raw", "16M", tool="pvesm")
    volid = f"local:{vmid}/vm-{vmid}-disk-4.raw"
    image = host.root / "var/lib/vz/images" / str(vmid) / f"vm-{vmid}-disk-4.raw"

    result = host.pct("free", volid, tool="pvesm", check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == (f"can't remove volume '{volid}' of CT {vmid} - protection mode enabled; "
                                     f"clear it first with 'pct set {vmid} --protection 0'")
    assert image.exists()

    host.pct("rescan")
    result = host.pct("free", volid, tool="pvesm", check=False)
    assert "protection mode enabled" in result.stderr
    assert image.exists()

    host.pct("set", vmid, "--protection", "0")
    result = host.pct("free", volid, tool="pvesm", check=False)
    assert f"in use by CT {vmid} (unused0)" in result.stderr
    assert image.exists()
