"""pct console (cmode tty, console, shell) and pct enter, driven through tmux as a user would."""

import shutil
import subprocess
import time

import pytest

from conftest import pct_command

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    """A tmux session running one command, read back with capture-pane."""

    def __init__(self, name: str, command: str, env: dict):
        self.name = name
        exports = f"PCT_ROOT={env['PCT_ROOT']} "
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "30", exports + command],
                       check=True)

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True).stdout

    def wait_for(self, text: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.screen():
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def debian_ct(host, debian_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(debian_template), "--hostname", "console-test", "--password", "pw-123456")
    host.pct("start", vmid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = host.pct("exec", vmid, "--", "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(0.5)
    return vmid


@pytest.mark.parametrize("cmode", ["tty", "console"])
def test_console_shows_login(host, debian_ct, cmode):
    host.pct("set", debian_ct, "--cmode", cmode)
    assert f"cmode: {cmode}\n" in host.conf_text(debian_ct).split("[pve:pending]")[0]
    terminal = Terminal(f"pct-console-{debian_ct}-{cmode}", f"{pct_command()} console {debian_ct}", host.env)
    try:
        time.sleep(1)
        terminal.send("Enter")
        assert terminal.wait_for("console-test login:"), terminal.screen()
        time.sleep(0.5)
        terminal.send("root", "Enter")
        assert terminal.wait_for("Password:"), terminal.screen()
        time.sleep(0.5)  # login reads the password only once it has turned echo off
        terminal.send("pw-123456", "Enter")
        assert terminal.wait_for("root@console-test"), terminal.screen()
        terminal.send("C-a", "q")
    finally:
        terminal.close()


def test_console_shell_mode_and_enter(host, debian_ct):
    host.pct("set", debian_ct, "--cmode", "shell")
    for command in (f"{pct_command()} console {debian_ct}", f"{pct_command()} enter {debian_ct}"):
        terminal = Terminal(f"pct-enter-{debian_ct}", command, host.env)
        try:
            assert terminal.wait_for("root@console-test"), terminal.screen()
            terminal.send("echo result-$((6*7)) $HOME", "Enter")
            assert terminal.wait_for("result-42 /root"), terminal.screen()
            terminal.send("exit", "Enter")
        finally:
            terminal.close()
