"""The CPU balancer's choice and the kernel CPU list format."""

from pct.runtime.cpusets import choose_cpus, format_cpu_list, parse_cpu_list, plan_rebalance
from pct.runtime.cpusets import main as cpusets_main
from pct.runtime.lxcconf import post_stop_hook


def test_parse_cpu_list():
    assert parse_cpu_list("0-2,5\n") == [0, 1, 2, 5]
    assert parse_cpu_list("7") == [7]


def test_format_cpu_list():
    assert format_cpu_list([3, 1, 2]) == "1,2,3"


def test_least_used_cpus_win():
    busy = {101: [0, 1], 102: [0]}
    assert choose_cpus(2, 4, busy) == [2, 3]
    assert choose_cpus(3, 4, busy) == [1, 2, 3]


def test_unrestricted_containers_do_not_count():
    assert choose_cpus(1, 4, {101: [0, 1, 2, 3]}) == [0]


def test_all_cpus_means_no_cpuset():
    assert choose_cpus(4, 4, {}) is None
    assert choose_cpus(None, 4, {}) is None


def test_rebalance_keeps_even_placement():
    current = {101: [0], 102: [1]}
    assert plan_rebalance({101: 1, 102: 1}, current, 2) == current


def test_rebalance_spreads_shared_cpu():
    # 102 stopped, so 101 and 103 share CPU 0 while CPU 1 is idle.
    plan = plan_rebalance({101: 1, 103: 1}, {101: [0], 103: [0]}, 2)
    assert plan == {101: [1], 103: [0]} or plan == {101: [0], 103: [1]}
    assert sorted(plan[101] + plan[103]) == [0, 1]


def test_rebalance_moves_fewest_containers():
    current = {101: [0], 102: [0], 103: [1], 104: [2]}
    plan = plan_rebalance({101: 1, 102: 1, 103: 1, 104: 1}, current, 4)
    moved = [vmid for vmid in plan if plan[vmid] != current[vmid]]
    assert moved == [101]
    assert plan[101] == [3]


def test_rebalance_places_container_without_cpuset():
    plan = plan_rebalance({101: 2, 102: 2}, {101: [0, 1], 102: []}, 4)
    assert plan == {101: [0, 1], 102: [2, 3]}


def test_rebalance_resizes_to_cores():
    plan = plan_rebalance({101: 1}, {101: [0, 1, 2]}, 4)
    assert plan == {101: [0]}


def test_post_stop_hook_starts_balancer_detached(tmp_path):
    hook = post_stop_hook(tmp_path / "lxc/101/rootfs", 101, rebalance_root=tmp_path)
    line = next(line for line in hook.splitlines() if "pct.runtime.cpusets" in line)
    assert line.startswith("setsid -f env ")
    assert f"PCT_ROOT={tmp_path}" in line
    assert "--after-stop 101" in line
    assert f">>{tmp_path}/lxc/101/cpusets.log 2>&1" in line
    assert "pct.runtime.cpusets" not in post_stop_hook(tmp_path / "lxc/101/rootfs", 101)


def test_balancer_main_rejects_bad_arguments(capsys):
    assert cpusets_main(["--after-stop", "x"]) == 2
    assert "usage: python -m pct.runtime.cpusets --after-stop VMID" in capsys.readouterr().err


def test_rebalance_after_stop_leaves_removed_root_alone(tmp_path):
    from pct.paths import Paths
    from pct.runtime.cpusets import rebalance_after_stop

    root = tmp_path / "gone"
    rebalance_after_stop(Paths(root), 101, timeout=0)

    assert not root.exists()
