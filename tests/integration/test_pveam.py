"""pveam update, available, download, list, remove and build against a loopback HTTP server.

The index, its signatures and the template archives are served by a real
HTTP server on 127.0.0.1 that each test starts. The signatures are made with
a GPG key generated for the test and checked by gpgv.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path

import pytest

STORAGE_CFG = """dir: local
\tpath /var/lib/vz
\tcontent vztmpl,backup,rootdir,images,iso

dir: second
\tpath /srv/second
\tcontent vztmpl

dir: disks
\tpath /srv/disks
\tcontent images,rootdir
"""


class TemplateHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the test's folder; ``/cut/<file>`` sends half of a file, then hangs up."""

    def do_GET(self):
        if not self.path.startswith("/cut/"):
            return super().do_GET()
        data = (Path(self.directory) / self.path[len("/cut/"):]).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


class Server:
    """A loopback HTTP server for one test, serving *directory*."""

    def __init__(self, directory: Path):
        self.directory = directory
        handler = lambda *args: TemplateHandler(*args, directory=str(directory))  # noqa: E731
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server():
    directory = Path(tempfile.mkdtemp(prefix="pveam-server-"))
    serving = Server(directory)
    yield serving
    serving.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def gpg_key():
    """A GNUPGHOME with one new signing key; stops the gpg-agent the key generation started."""
    home = Path(tempfile.mkdtemp(prefix="pveam-gnupg-"))
    os.chmod(home, 0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "pct test <test@example.invalid>",
                    "ed25519", "sign", "never"], env=env, check=True, capture_output=True)
    yield env
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


def pveam(host, *args, check=True):
    return host.pct(*args, check=check, tool="pveam")


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def make_archive(path: Path, payload: int = 1 << 20) -> Path:
    """Write a gzip tar of *payload* random bytes, large enough for several progress steps."""
    data = os.urandom(payload)
    with tarfile.open(path, "w:gz") as archive:
        member = tarfile.TarInfo("etc/payload")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    return path


def stanza(package, version, location, section="system", **fields):
    lines = {"Package": package, "Version": version, "Type": "lxc", "OS": "debian-12", "Section": section,
             "Maintainer": "Test <test@example.invalid>", "Architecture": "amd64", "Location": location,
             "Description": f"{package}\n Line two of the description.", **fields}
    return "".join(f"{key}: {value}\n" for key, value in lines.items() if value is not None)


def checksums(path: Path) -> dict[str, str]:
    data = path.read_bytes()
    return {"sha512sum": hashlib.sha512(data).hexdigest(), "md5sum": hashlib.md5(data).hexdigest()}


def set_up_root(host, server, sources: str | None = None):
    """Write storage.cfg and a sources config for one source 'test' on *server*."""
    pve = host.root / "etc/pve"
    pve.mkdir(parents=True, exist_ok=True)
    (pve / "storage.cfg").write_text(STORAGE_CFG)
    if sources is None:
        sources = f"source: test\n\turl {server.url('aplinfo.dat')}\n"
    (pve / "pveam-sources.cfg").write_text(sources)


def publish_standard_index(server) -> Path:
    """Serve two templates and an index that lists them; return the Debian archive."""
    (server.directory / "system").mkdir()
    debian = make_archive(server.directory / "system/debian-12-standard_12.7-1_amd64.tar.zst")
    wordpress = make_archive(server.directory / "turnkey-wordpress_18.0-1_amd64.tar.gz", payload=4096)
    (server.directory / "aplinfo.dat").write_text(
        stanza("debian-12-standard", "12.7-1", "system/" + debian.name, **checksums(debian)) + "\n"
        + stanza("turnkey-wordpress", "18.0-1", wordpress.name, section="turnkeylinux",
                 md5sum=checksums(wordpress)["md5sum"]))
    return debian


def cache_of(host, storage="local") -> Path:
    base = {"local": "var/lib/vz", "second": "srv/second"}[storage]
    return host.root / base / "template/cache"


def cache_listing(host, storage="local") -> list[str]:
    cache = cache_of(host, storage)
    return sorted(os.listdir(cache)) if cache.exists() else []


def index_copy(host, source="test") -> Path:
    return host.root / "var/lib/pve-manager/apl-info" / source


# -- update and available ----------------------------------------------------------


def test_update_then_available(host, server):
    set_up_root(host, server)
    publish_standard_index(server)

    result = pveam(host, "update")
    assert result.stdout.splitlines() == ["test: added debian-12-standard 12.7-1",
                                          "test: added turnkey-wordpress 18.0-1"]
    assert pveam(host, "update").stdout == "no changes\n"

    rows = pveam(host, "available").stdout.splitlines()
    assert rows == ["system          debian-12-standard_12.7-1_amd64.tar.zst",
                    "turnkeylinux    turnkey-wordpress_18.0-1_amd64.tar.gz"]
    system_only = pveam(host, "available", "--section", "system").stdout.splitlines()
    assert system_only == rows[:1]
    listed = json.loads(pveam(host, "available", "--output-format", "json").stdout)
    assert listed[1]["version"] == "18.0-1"
    assert listed[1]["source"] == "test"


def test_update_reports_new_version(host, server):
    set_up_root(host, server)
    publish_standard_index(server)
    pveam(host, "update")
    index = server.directory / "aplinfo.dat"
    index.write_text(index.read_text().replace("12.7-1", "12.8-1"))
    assert pveam(host, "update").stdout == "test: updated debian-12-standard 12.7-1 -> 12.8-1\n"
    assert "debian-12-standard_12.8-1_amd64.tar.zst" in pveam(host, "available").stdout


def test_update_without_sources(host, server):
    set_up_root(host, server, sources="")
    assert_one_line_error(pveam(host, "update", check=False), "no index sources configured")


def test_signed_index_verified(host, server, gpg_key):
    publish_standard_index(server)
    index = server.directory / "aplinfo.dat"
    subprocess.run(["gpg", "--batch", "--yes", "--detach-sign", "-o", str(index) + ".sig", str(index)],
                   env=gpg_key, check=True, capture_output=True)
    keyring = host.root / "etc/pve/pveam-trusted.gpg"
    keyring.parent.mkdir(parents=True)
    keyring.write_bytes(subprocess.run(["gpg", "--export"], env=gpg_key, check=True,
                                       capture_output=True).stdout)
    set_up_root(host, server, sources=(f"source: test\n\turl {server.url('aplinfo.dat')}\n"
                                       f"\tsignature {server.url('aplinfo.dat.sig')}\n"
                                       "\tkeyring /etc/pve/pveam-trusted.gpg\n"))
    pveam(host, "update")
    good_copy = index_copy(host).read_text()

    index.write_text(index.read_text().replace("12.7-1", "12.7-2"))
    result = pveam(host, "update", check=False)
    assert_one_line_error(result, "update failed for source 'test': bad signature on " + server.url("aplinfo.dat"))
    assert index_copy(host).read_text() == good_copy
    assert os.listdir(index_copy(host).parent) == ["test"]


def test_bad_source_keeps_others(host, server):
    publish_standard_index(server)
    (server.directory / "other.dat").write_text(stanza("p", "1-1", "p.tar.gz", md5sum="00") + "\n"
                                                + stanza("p", "1-2", "p2.tar.gz", md5sum="00"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    set_up_root(host, server, sources=(
        f"source: test\n\turl {server.url('aplinfo.dat')}\n\n"
        f"source: gone\n\turl http://127.0.0.1:{closed_port}/aplinfo.dat\n\n"
        f"source: dup\n\turl {server.url('other.dat')}\n"))
    index_copy(host, "gone").parent.mkdir(parents=True)
    index_copy(host, "gone").write_text(stanza("old", "1-1", "old_1-1_amd64.tar.gz", md5sum="00"))

    result = pveam(host, "update", check=False)
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"update failed for source 'gone': cannot fetch http://127.0.0.1:{closed_port}/")
    assert "duplicate package 'p'" in errors[1]
    assert "test: added debian-12-standard 12.7-1" in result.stdout
    assert "old_1-1_amd64.tar.gz" in pveam(host, "available").stdout
    assert not index_copy(host, "dup").exists()


def test_update_rejects_escaping_location(host, server):
    set_up_root(host, server)
    (server.directory / "aplinfo.dat").write_text(
        stanza("evil", "1-1", "../../../etc/cron.d/evil.tar.gz", md5sum="00"))
    result = pveam(host, "update", check=False)
    assert_one_line_error(result, "unsafe Location '../../../etc/cron.d/evil.tar.gz'")
    assert not index_copy(host).exists()
    assert_one_line_error(pveam(host, "download", "local", "evil.tar.gz", check=False),
                          "template 'evil.tar.gz' not found in the index")
    assert cache_listing(host) == []


@pytest.mark.parametrize("defect, message", [
    ("Location", "missing Location"),
    ("Version", "truncated stanza, missing Version"),
])
def test_update_rejects_broken_stanza(host, server, defect, message):
    set_up_root(host, server)
    (server.directory / "aplinfo.dat").write_text(stanza("p", "1-1", "p_1-1_amd64.tar.gz", md5sum="00",
                                                         **{defect: None}))
    assert_one_line_error(pveam(host, "update", check=False), message)
    assert not index_copy(host).exists()


# -- download, list, remove ----------------------------------------------------------


def test_download_verifies_and_logs(host, server):
    set_up_root(host, server)
    debian = publish_standard_index(server)
    pveam(host, "update")

    result = pveam(host, "download", "local", debian.name)
    assert result.stdout == f"downloaded local:vztmpl/{debian.name}\n"
    assert cache_listing(host) == [debian.name]
    assert (cache_of(host) / debian.name).read_bytes() == debian.read_bytes()
    again = pveam(host, "download", "local", debian.name).stdout
    assert again == f"local:vztmpl/{debian.name} is already present with the expected checksum\n"

    logs = [path for path in (host.root / "var/log/pve/tasks").rglob("UPID:*") if ":download:" in path.name]
    assert len(logs) == 1
    log = logs[0].read_text().splitlines()
    assert "10% (" in log[1]
    assert any(line.startswith("100% (") for line in log)
    assert log[-1] == "TASK OK"

    listing = pveam(host, "list", "local").stdout.splitlines()
    assert listing[0].split() == ["NAME", "SIZE"]
    assert listing[1].split()[0] == f"local:vztmpl/{debian.name}"
    rows = json.loads(pveam(host, "list", "local", "--output-format", "json").stdout)
    assert rows == [{"volid": f"local:vztmpl/{debian.name}", "size": debian.stat().st_size, "format": "tar.zst"}]


def test_download_md5_only_entry(host, server):
    set_up_root(host, server)
    publish_standard_index(server)
    pveam(host, "update")
    pveam(host, "download", "second", "turnkey-wordpress_18.0-1_amd64.tar.gz")
    assert cache_listing(host, "second") == ["turnkey-wordpress_18.0-1_amd64.tar.gz"]


def test_download_checksum_mismatch(host, server):
    set_up_root(host, server)
    debian = publish_standard_index(server)
    pveam(host, "update")
    make_archive(debian)  # the served file changes after the index was published

    result = pveam(host, "download", "local", debian.name, check=False)
    assert_one_line_error(result, f"sha512 checksum mismatch for {debian.name}")
    assert "the downloaded file was deleted" in result.stderr
    assert cache_listing(host) == []


def test_download_stopping_midway(host, server):
    set_up_root(host, server)
    debian = make_archive(server.directory / "debian-12-standard_12.7-1_amd64.tar.zst")
    (server.directory / "aplinfo.dat").write_text(
        stanza("debian-12-standard", "12.7-1", "cut/" + debian.name, **checksums(debian)))
    pveam(host, "update")

    result = pveam(host, "download", "local", debian.name, check=False)
    size = debian.stat().st_size
    assert_one_line_error(result, f"stopped after {size // 2} of {size} bytes")
    assert cache_listing(host) == []


def test_download_bad_requests(host, server):
    set_up_root(host, server)
    debian = publish_standard_index(server)
    pveam(host, "update")

    assert_one_line_error(pveam(host, "download", "local", "nosuch_1-1_amd64.tar.gz", check=False),
                          "template 'nosuch_1-1_amd64.tar.gz' not found in the index; run 'pveam update'")
    assert_one_line_error(pveam(host, "download", "missing", debian.name, check=False),
                          "storage 'missing' does not exist")
    assert_one_line_error(pveam(host, "download", "disks", debian.name, check=False),
                          "storage 'disks' does not allow templates: add 'vztmpl'")
    assert cache_listing(host) == []
    assert not (host.root / "srv/disks/template").exists()


def test_remove_template_only(host, server):
    set_up_root(host, server)
    debian = publish_standard_index(server)
    pveam(host, "update")
    pveam(host, "download", "local", debian.name)

    assert_one_line_error(pveam(host, "remove", "local:100/vm-100-disk-0.raw", check=False),
                          "volume 'local:100/vm-100-disk-0.raw' is not a template")
    assert_one_line_error(pveam(host, "remove", "local:vztmpl/nosuch.tar.gz", check=False),
                          "template 'local:vztmpl/nosuch.tar.gz' does not exist")
    assert_one_line_error(pveam(host, "remove", "local:vztmpl/..", check=False), "is not a template volume")
    assert cache_listing(host) == [debian.name]

    assert pveam(host, "remove", f"local:vztmpl/{debian.name}").stdout == f"removed local:vztmpl/{debian.name}\n"
    assert cache_listing(host) == []
    assert pveam(host, "list", "local").stdout.splitlines()[1:] == []


# -- the local builder ------------------------------------------------------------


def test_build_minimal_enters_local_index(host, server):
    set_up_root(host, server)
    assert pveam(host, "build", "minimal").stdout == "local:vztmpl/busybox-test_1.0-1_amd64.tar.gz\n"
    assert pveam(host, "build", "busybox").stdout == "local:vztmpl/busybox-test_1.0-1_amd64.tar.gz\n"
    assert pveam(host, "available").stdout == "system          busybox-test_1.0-1_amd64.tar.gz\n"

    pveam(host, "download", "second", "busybox-test_1.0-1_amd64.tar.gz")
    built = cache_of(host) / "busybox-test_1.0-1_amd64.tar.gz"
    assert (cache_of(host, "second") / built.name).read_bytes() == built.read_bytes()
    local_index = (host.root / "var/lib/pve-manager/local-templates").read_text()
    assert local_index.count("Package: minimal\n") == 1


def test_remove_built_template_leaves_index(host, server):
    set_up_root(host, server)
    pveam(host, "build", "minimal")
    pveam(host, "download", "second", "busybox-test_1.0-1_amd64.tar.gz")

    pveam(host, "remove", "second:vztmpl/busybox-test_1.0-1_amd64.tar.gz")
    assert pveam(host, "available").stdout == "system          busybox-test_1.0-1_amd64.tar.gz\n"

    pveam(host, "remove", "local:vztmpl/busybox-test_1.0-1_amd64.tar.gz")
    assert pveam(host, "available").stdout == ""
    local_index = (host.root / "var/lib/pve-manager/local-templates").read_text()
    assert "Package: minimal" not in local_index
