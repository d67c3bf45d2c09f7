import os

import pytest

from harness import GUEST, LOCKSTEP, Cleanup, NetNS, VM


def _kvm_usable():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as e:
        return str(e)
    os.close(fd)
    return None


@pytest.fixture(scope="session", autouse=True)
def built():
    for path in (LOCKSTEP, GUEST):
        if not os.path.exists(path):
            pytest.fail(f"{path} is missing: run `make` first")


@pytest.fixture
def kvm():
    """Tests that run a guest: fail in CI when /dev/kvm is unusable, skip elsewhere."""
    why = _kvm_usable()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"/dev/kvm is not usable in CI: {why}")
        pytest.skip(f"/dev/kvm is not usable here: {why}")


@pytest.fixture
def cleanup():
    c = Cleanup()
    yield c
    c.run()


@pytest.fixture
def start_vm(kvm, cleanup, tmp_path):
    """start_vm(args, netns=None, name="vm") -> VM; killed at teardown."""
    def start(args, netns=None, name="vm", command="run"):
        return VM(cleanup, tmp_path, args, netns=netns, name=name, command=command)
    return start


@pytest.fixture
def netns(cleanup):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    return NetNS(cleanup)


def pytest_configure(config):
    config.addinivalue_line("markers", "vhosts: starts virtual test hosts itself (runs on the outer "
                            "machine, never inside a virtual host)")
