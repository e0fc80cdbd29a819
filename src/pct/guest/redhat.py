"""Guest setup for the Red Hat family: Fedora and CentOS, Rocky, AlmaLinux, RHEL."""

from __future__ import annotations

from pct.guest import common, ifcfg, nmkeyfile, systemd
from pct.guest.base import GuestSetup
from pct.guest.model import managed_nets


class RedHatSetup(GuestSetup):
    """/etc/hostname, ifcfg files or NetworkManager keyfiles, systemd gettys, /etc/localtime.

    Subclasses set the first release whose NetworkManager writes keyfiles
    instead of ifcfg files.
    """

    keyfiles_from: tuple[int, ...] = (9,)

    def uses_keyfiles(self) -> bool:
        return self.release.at_least(*self.keyfiles_from)

    def directories(self) -> tuple[str, ...]:
        if self.uses_keyfiles():
            return (nmkeyfile.CONNECTIONS_DIR,)
        return (ifcfg.SCRIPTS_DIR,)

    def edited_files(self) -> tuple[str, ...]:
        return () if self.uses_keyfiles() else ("/etc/sysconfig/network",)

    def set_hostname(self) -> None:
        common.write_file(self.root, "/etc/hostname", self.conf.short_hostname() + "\n")

    def set_network(self) -> None:
        nets = managed_nets(self.conf.nets)
        if not nets:
            return
        # Limitation: an ifcfg-<name> file that the template ships for the
        # same interface stays. On releases where NetworkManager still loads
        # ifcfg files, it then has two profiles for that interface.
        if self.uses_keyfiles():
            self.root.makedirs(nmkeyfile.CONNECTIONS_DIR)
            for net in nets:
                common.write_generated(self.root, nmkeyfile.keyfile_path(net), nmkeyfile.render_keyfile(net), 0o600)
            return
        self.root.makedirs(ifcfg.SCRIPTS_DIR)
        common.write_shell_variables(self.root, "/etc/sysconfig/network", {"NETWORKING": "yes"})
        for net in nets:
            common.write_generated(self.root, ifcfg.ifcfg_file(net), ifcfg.render_ifcfg(net))
            for version in (4, 6):
                routes = ifcfg.render_routes(net, version)
                if routes is None:
                    common.remove_generated(self.root, ifcfg.route_file(net, version))
                else:
                    common.write_generated(self.root, ifcfg.route_file(net, version), routes)

    def set_gettys(self) -> None:
        if systemd.uses_systemd(self.root):
            systemd.set_gettys(self.root, self.conf)
            systemd.mask_failing_units(self.root)

    def set_timezone(self, timezone: str) -> None:
        common.set_localtime(self.root, timezone)


class CentOSSetup(RedHatSetup):
    """CentOS, Rocky Linux, AlmaLinux and RHEL: keyfiles from release 9 on."""

    ostype = "centos"
    keyfiles_from = (9,)


class FedoraSetup(RedHatSetup):
    """Fedora: keyfiles from release 33 on, when NetworkManager began to write new profiles as keyfiles."""

    ostype = "fedora"
    keyfiles_from = (33,)
