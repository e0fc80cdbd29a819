"""The CPU balancer's choice and the kernel CPU list format."""

from pct.runtime.cpusets import choose_cpus, format_cpu_list, parse_cpu_list


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
