"""The QMP monitor against a running guest: run state, events, errors, many clients."""
import re
import time

import pytest

from harness import GUEST, QMP


@pytest.fixture
def running(start_vm, tmp_path):
    sock = str(tmp_path / "qmp.sock")
    vm = start_vm(["--kernel", GUEST, "--qmp", sock, "--cmdline", "app=dirty,pages=4,period=20"])
    vm.wait_console(r"dirty: counter=\d+")
    return vm, sock


def last_counter(vm):
    found = re.findall(r"dirty: counter=(\d+) pages=\d+\r?\n", vm.console())
    return int(found[-1]) if found else -1


def test_greeting_and_version(running):
    vm, sock = running
    q = QMP(sock, negotiate=False)
    v = q.greeting["QMP"]["version"]
    assert v["package"] == "lockstep"
    assert set(v["qemu"]) == {"major", "minor", "micro"}
    assert q.greeting["QMP"]["capabilities"] == []
    assert q.execute("qmp_capabilities") == {"return": {}}
    assert q.execute("query-version")["return"]["package"] == "lockstep"
    names = {c["name"] for c in q.execute("query-commands")["return"]}
    assert {"qmp_capabilities", "query-version", "query-status", "query-commands", "stop",
            "cont", "quit"} <= names


def test_stop_cont_follow_query_status(running):
    vm, sock = running
    q = QMP(sock)
    st = q.execute("query-status")["return"]
    assert st["status"] == "running" and st["running"] is True

    assert q.execute("stop", id="s1") == {"return": {}, "id": "s1"}
    ev = q.wait_event("STOP")
    assert set(ev["timestamp"]) == {"seconds", "microseconds"}
    st = q.execute("query-status")["return"]
    assert st["status"] == "paused" and st["running"] is False
    # The guest really is stopped: its counter does not move.
    frozen = last_counter(vm)
    time.sleep(0.3)
    assert last_counter(vm) == frozen
    # A second stop is accepted and changes nothing.
    assert q.execute("stop") == {"return": {}}

    assert q.execute("cont") == {"return": {}}
    q.wait_event("RESUME")
    assert q.execute("query-status")["return"]["status"] == "running"
    vm.wait_console(rf"dirty: counter={frozen + 3}\b")


def test_quit_replies_then_shuts_down(running):
    vm, sock = running
    q = QMP(sock)
    assert q.execute("quit") == {"return": {}}
    ev = q.wait_event("SHUTDOWN")
    assert ev["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert vm.wait_exit() == 0


def test_errors_keep_the_monitor_alive(running):
    vm, sock = running
    q = QMP(sock, negotiate=False)
    r = q.execute("query-status")
    assert r["error"]["class"] == "CommandNotFound"
    assert "qmp_capabilities" in r["error"]["desc"]
    assert q.execute("qmp_capabilities") == {"return": {}}

    q.send_raw('{"execute": "query-status", ]\n')  # malformed object
    r = q.reply()
    assert r["error"]["class"] == "GenericError"
    q.send_raw('@@garbage\n')
    assert q.reply()["error"]["class"] == "GenericError"
    r = q.execute("query-status")  # the parser resynchronised
    assert r["return"]["status"] == "running", r

    r = q.execute("no-such-command")
    assert r["error"] == {"class": "CommandNotFound",
                          "desc": "The command no-such-command has not been found"}
    r = q.execute("stop", {"force": True})
    assert r["error"]["class"] == "GenericError" and "force" in r["error"]["desc"]
    q.send_raw('[1, 2, 3]\n')
    assert q.reply()["error"]["class"] == "GenericError"
    q.send_raw('{"execute": 42}\n')
    assert q.reply()["error"]["class"] == "GenericError"
    q.send_raw('{"execute": "query-status", "arguments": [1]}\n')
    assert q.reply()["error"]["class"] == "GenericError"
    assert q.execute("query-status")["return"]["running"] is True
    assert vm.proc.poll() is None


def test_several_clients_in_a_row_and_at_once(running):
    vm, sock = running
    for i in range(5):
        q = QMP(sock)
        assert q.execute("query-status", id=i)["id"] == i
        q.close()
    # A client that vanishes mid-message does not disturb the next one.
    q = QMP(sock)
    q.send_raw('{"execute": "query-sta')
    q.close()
    a, b = QMP(sock), QMP(sock)
    assert a.execute("stop") == {"return": {}}
    # Both clients see the event.
    a.wait_event("STOP")
    b.wait_event("STOP")
    assert b.execute("cont") == {"return": {}}
    a.wait_event("RESUME")
    assert vm.proc.poll() is None
