"""COLO: a primary and a secondary kept in step by checkpoints, and failover on either side."""
import json
import re
import signal
import time

import pytest

import harness
from harness import GUEST, QMP, scaled

_port = [47300]


def free_port():
    _port[0] += 1
    return _port[0]


def counters(vm):
    return [int(x) for x in re.findall(r"dirty: counter=(\d+) pages=\d+\r?\n", vm.console())]


# (name, QMP, VM) of the pair under test: shown when a wait times out.
_watched = []


def diagnosis():
    lines = []
    for name, q, vm in _watched:
        try:
            st = q.execute("query-colo-status")["return"]
        except Exception as e:  # the process may be gone
            st = f"(no answer: {e})"
        lines.append(f"{name}: {st}; stderr: {vm.stderr()[-500:]!r}")
    return "\n".join(lines)


def wait_for(fn, timeout=10.0, what="condition"):
    return harness.wait_for(fn, timeout, what, diagnose=diagnosis, poll=0.02)


def checkpoints(q):
    return q.execute("query-colo-stats")["return"]["checkpoints"]


def counted_at_least(q, base, n):
    """n more checkpoints than in the stats `base`, each with its RAM checked."""
    st = q.execute("query-colo-stats")["return"]
    return st["ram-checks"] >= base["ram-checks"] + n and st["checkpoints"] >= base["checkpoints"] + n


@pytest.fixture
def colo_pair(start_vm, tmp_path):
    """A protected pair started with the one-command form; returns (pri, qp, sec, qs)."""
    def make(cmdline="app=dirty,pages=64,period=10", delay=200, check_ram=False, peer_timeout=None,
             before_primary=None):
        addr = f"127.0.0.1:{free_port()}"
        both = ["--peer-timeout", str(peer_timeout)] if peer_timeout else []
        sec = start_vm(["secondary", "--listen", addr, "--qmp", str(tmp_path / "s.sock")] + both,
                       name="sec", command=None)
        qs = QMP(str(tmp_path / "s.sock"))
        if before_primary:
            before_primary(qs)
        pri = start_vm(["primary", "--kernel", GUEST, "--peer", addr, "--checkpoint-delay",
                        str(delay), "--qmp", str(tmp_path / "p.sock"), "--cmdline", cmdline] + both,
                       name="pri", command=None)
        qp = QMP(str(tmp_path / "p.sock"))
        _watched[:] = [("primary", qp, pri), ("secondary", qs, sec)]
        if check_ram:
            qp.execute("migrate-set-parameters", {"x-check-ram": True})
        wait_for(lambda: qp.execute("query-colo-status")["return"]["mode"] == "primary",
                 what="the primary to enter COLO")
        wait_for(lambda: qs.execute("query-colo-status")["return"]["mode"] == "secondary",
                 what="the secondary to enter COLO")
        return pri, qp, sec, qs
    return make


def test_pair_reaches_colo_and_checkpoints(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=100)
    assert qp.execute("query-migrate")["return"]["status"] == "colo"
    # While COLO runs, no second migration and no capability change.
    r = qp.execute("migrate", {"uri": "tcp:127.0.0.1:1"})
    assert "already in progress" in r["error"]["desc"], r
    r = qp.execute("migrate-set-capabilities", {"capabilities": [{"capability": "x-colo", "state": False}]})
    assert "in progress" in r["error"]["desc"], r
    n = wait_for(lambda: checkpoints(qp) >= 10 and checkpoints(qp), what="10 checkpoints")
    st = qp.execute("query-colo-stats")["return"]
    assert st["reasons"]["periodic"] >= 10
    assert st["pages"] > 0 and st["bytes"] > 0
    assert 0 < st["pause-us"]["last"] <= st["pause-us"]["max"]
    assert st["pause-us"]["mean"] <= st["pause-us"]["max"] and st["pause-us"]["p99"] <= st["pause-us"]["max"]
    # Both guests run: the secondary's console shows the guest going on too.
    pri.wait_console(r"dirty: counter=\d+")
    wait_for(lambda: len(counters(sec)) > 5, what="the secondary's guest to run")
    assert checkpoints(qs) >= n - 1


def test_ram_equal_after_every_checkpoint(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=50, check_ram=True)
    # Checkpoints taken before x-check-ram reached the primary carry no hash:
    # count from a checkpoint that did.
    base = wait_for(lambda: (lambda s: s if s["ram-checks"] > 0 else None)(
        qs.execute("query-colo-stats")["return"]), what="a checked checkpoint")
    # The secondary compares its RAM with the primary's hash after each checkpoint it
    # applied (a difference ends COLO with an error). It counts the check inside the
    # apply and the checkpoint after it, so wait for both counts.
    wait_for(lambda: counted_at_least(qs, base, 40), timeout=30, what="40 checked checkpoints")
    assert qs.execute("query-colo-status")["return"]["mode"] == "secondary"
    # Freeze both and take one last checkpoint: the last hashes are the same RAM.
    qp.execute("stop")
    n = checkpoints(qs)
    qp.execute("x-colo-checkpoint")
    wait_for(lambda: checkpoints(qs) > n, what="a further checkpoint")
    sp, ss = qp.execute("query-colo-stats")["return"], qs.execute("query-colo-stats")["return"]
    assert sp["checkpoints"] == ss["checkpoints"]
    assert sp["x-last-ram-hash"] == ss["x-last-ram-hash"]


def test_precopy_sends_ahead_and_ram_stays_equal(colo_pair):
    # 1024 pages rewritten every 10 ms: each checkpoint finds far more than the
    # pre-copy threshold dirty, so most pages go ahead while both VMs run, and
    # the rest at the stop; the RAM must still match after every checkpoint.
    # (200 ms between checkpoints: under TCG the guest dirties pages slower.)
    pri, qp, sec, qs = colo_pair("app=dirty,pages=1024,period=10", delay=200, check_ram=True)
    base = wait_for(lambda: (lambda s: s if s["ram-checks"] > 0 else None)(
        qs.execute("query-colo-stats")["return"]), what="a checked checkpoint")
    wait_for(lambda: counted_at_least(qs, base, 20), timeout=30, what="20 checked checkpoints")
    sp, ss = qp.execute("query-colo-stats")["return"], qs.execute("query-colo-stats")["return"]
    assert sp["precopy-pages"] > 0 and ss["precopy-pages"] > 0
    assert sp["precopy-pages"] < sp["pages"]
    assert qs.execute("query-colo-status")["return"]["mode"] == "secondary"
    assert qp.execute("query-colo-status")["return"]["mode"] == "primary"


def test_on_demand_checkpoint_and_delay_change(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=60000)
    time.sleep(0.3)
    base = checkpoints(qp)
    assert qp.execute("x-colo-checkpoint") == {"return": {}}
    wait_for(lambda: checkpoints(qp) == base + 1, what="the requested checkpoint")
    assert qp.execute("query-colo-stats")["return"]["reasons"]["request"] == 1
    # Changing x-checkpoint-delay while in COLO checkpoints at once.
    assert qp.execute("migrate-set-parameters", {"x-checkpoint-delay": 50000}) == {"return": {}}
    wait_for(lambda: checkpoints(qp) == base + 2, what="a checkpoint after the delay change")
    assert qp.execute("query-migrate-parameters")["return"]["x-checkpoint-delay"] == 50000
    r = qs.execute("x-colo-checkpoint")
    assert "primary" in r["error"]["desc"]


def test_primary_killed_secondary_takes_over(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=100)
    wait_for(lambda: checkpoints(qs) >= 5, what="5 checkpoints")
    # A checkpoint we know the value of: stop the primary's guest, checkpoint, read it.
    qp.execute("stop")
    n = checkpoints(qs)
    qp.execute("x-colo-checkpoint")
    wait_for(lambda: checkpoints(qs) > n, what="the checkpoint")
    at_checkpoint = counters(pri)[-1]
    pri.proc.send_signal(signal.SIGKILL)
    # The decision. Either it came first (a requested failover), or the secondary had
    # already seen the socket close, stopped its guest and waited (an error exit) until
    # this decision: both take over.
    assert qs.execute("x-colo-lost-heartbeat") == {"return": {}}
    ev = qs.wait_event("COLO_EXIT")
    assert ev["data"] in ({"mode": "secondary", "reason": "request"},
                          {"mode": "secondary", "reason": "error", "x-waiting-for-decision": True}), ev
    reason = ev["data"]["reason"]
    wait_for(lambda: qs.execute("query-status")["return"]["status"] == "running",
             what="the secondary to run")
    st = qs.execute("query-colo-status")["return"]
    assert st["mode"] == "none" and st["last-mode"] == "secondary" and st["reason"] == reason
    assert st["x-failover-state"] == "completed" and "x-waiting-for-decision" not in st
    seen = len(counters(sec))
    later = wait_for(lambda: counters(sec)[seen:][:3] if len(counters(sec)) >= seen + 3 else None,
                     what="the secondary's guest to go on")
    assert later[0] >= at_checkpoint, (at_checkpoint, later)
    assert later == sorted(later)


def test_secondary_killed_primary_runs_on(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=100)
    wait_for(lambda: checkpoints(qp) >= 3, what="3 checkpoints")
    sec.proc.send_signal(signal.SIGKILL)
    ev = qp.wait_event("COLO_EXIT", timeout=10)
    assert ev["data"] == {"mode": "primary", "reason": "error"}
    assert qp.execute("query-colo-status")["return"]["mode"] == "none"
    assert qp.execute("query-migrate")["return"]["status"] == "completed"
    assert qp.execute("query-status")["return"]["status"] == "running"
    n = counters(pri)[-1]
    pri.wait_console(rf"counter={n + 5}\b")


def assert_guest_stopped(vm, seconds=1.0):
    """vm's guest makes no progress for `seconds` (scaled)."""
    n = len(counters(vm))
    time.sleep(scaled(seconds))
    assert len(counters(vm)) == n, "the guest still runs"


def assert_waits_for_decision(qs, sec, why):
    """The secondary lost its primary: stopped, saying so, until a decision."""
    ev = qs.wait_event("COLO_EXIT", timeout=10)
    assert ev["data"] == {"mode": "secondary", "reason": "error", "x-waiting-for-decision": True}, ev
    st = qs.execute("query-colo-status")["return"]
    assert st["mode"] == "none" and st["last-mode"] == "secondary" and st["reason"] == "error", st
    assert st["x-waiting-for-decision"] is True and why in st.get("x-error", ""), st
    assert qs.execute("query-status")["return"]["status"] == "paused"
    # Not even the monitor resumes it: only the decision does.
    assert "error" in qs.execute("cont")
    assert_guest_stopped(sec)


def test_silent_primary_detected(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=100)
    wait_for(lambda: checkpoints(qs) >= 3, what="3 checkpoints")
    pri.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        ev = qs.wait_event("COLO_EXIT", timeout=10)
        waited = time.monotonic() - t0
        assert ev["data"] == {"mode": "secondary", "reason": "error", "x-waiting-for-decision": True}
        assert waited < 3 + scaled(3)  # the peer timeout is 3 s
        st = qs.execute("query-colo-status")["return"]
        assert st["x-waiting-for-decision"] is True and "silent" in st.get("x-error", ""), st
        assert qs.execute("query-status")["return"]["status"] == "paused"
        assert_guest_stopped(sec)
        # The operator decides: the secondary takes over and its guest runs alone.
        assert qs.execute("x-colo-lost-heartbeat") == {"return": {}}
        n = len(counters(sec))
        wait_for(lambda: len(counters(sec)) > n + 3, what="the secondary's guest to run alone")
        st = qs.execute("query-colo-status")["return"]
        assert st["x-failover-state"] == "completed" and "x-waiting-for-decision" not in st
        assert qs.execute("x-colo-lost-heartbeat")["error"]["desc"] == "VM is not in COLO mode"
    finally:
        pri.proc.send_signal(signal.SIGCONT)


def in_colo(qp, qs):
    return (qp.execute("query-colo-status")["return"]["mode"] == "primary" and
            qs.execute("query-colo-status")["return"]["mode"] == "secondary")


def test_slow_cache_fill_still_reaches_colo(colo_pair):
    # The secondary's start-up (its RAM cache fill, slowed by a test hook) takes 2.5
    # times the silence timeout; it keeps the waiting primary informed meanwhile.
    slow = lambda qs: qs.execute("x-colo-test", {"cache-fill-delay-ms": 2500})  # noqa: E731
    pri, qp, sec, qs = colo_pair(delay=200, peer_timeout=1000, before_primary=slow)
    wait_for(lambda: checkpoints(qs) >= 3, what="3 checkpoints")
    assert in_colo(qp, qs)


def test_slow_apply_does_not_end_colo(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=60000, peer_timeout=1000)
    time.sleep(0.3)
    assert qs.execute("x-colo-test", {"apply-delay-ms": 2500}) == {"return": {}}
    n = checkpoints(qs)
    qp.execute("x-colo-checkpoint")
    wait_for(lambda: checkpoints(qs) > n, what="the slow checkpoint")
    assert in_colo(qp, qs)
    assert qs.execute("x-colo-test", {"apply-delay-ms": 0}) == {"return": {}}
    qp.execute("x-colo-checkpoint")
    wait_for(lambda: checkpoints(qs) > n + 1, what="the next checkpoint")
    assert in_colo(qp, qs)


def test_peer_timeout_option_detects_a_gone_peer(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=100, peer_timeout=1000)
    wait_for(lambda: checkpoints(qs) >= 3, what="3 checkpoints")
    sec.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        ev = qp.wait_event("COLO_EXIT", timeout=10)
        assert ev["data"] == {"mode": "primary", "reason": "error"}
        assert time.monotonic() - t0 < 1 + scaled(1.5)
        assert "silent" in qp.execute("query-colo-status")["return"].get("x-error", "")
    finally:
        sec.proc.send_signal(signal.SIGCONT)


def test_failover_during_apply_is_deferred(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=60000, check_ram=True)
    time.sleep(0.3)
    assert qs.execute("x-colo-test", {"apply-delay-ms": 1500}) == {"return": {}}
    n = qs.execute("query-colo-stats")["return"]["ram-checks"]
    qp.execute("x-colo-checkpoint")
    # The secondary is applying (it has checked the RAM, then sleeps 1.5 s).
    wait_for(lambda: qs.execute("query-colo-stats")["return"]["ram-checks"] > n,
             what="the apply to start")
    assert qs.execute("x-colo-lost-heartbeat") == {"return": {}}
    st = qs.execute("query-colo-status")["return"]
    assert st["mode"] == "secondary" and st["x-failover-state"] == "relaunch", st
    assert st["reason"] == "processing"
    ev = qs.wait_event("COLO_EXIT", timeout=10)
    assert ev["data"] == {"mode": "secondary", "reason": "request"}
    st = qs.execute("query-colo-status")["return"]
    assert st["x-failover-state"] == "completed" and st["last-mode"] == "secondary"
    n = len(counters(sec))
    wait_for(lambda: len(counters(sec)) > n + 3, what="the secondary's guest to run on")
    # The primary lost its secondary and runs alone.
    assert qp.wait_event("COLO_EXIT", timeout=10)["data"]["reason"] == "error"


def test_corrupted_checkpoint_ends_colo_on_receiver(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=60000)
    time.sleep(0.3)
    assert qp.execute("x-colo-test", {"corrupt-next-checkpoint": True}) == {"return": {}}
    qp.execute("x-colo-checkpoint")
    # One copy serves: the primary (its output is what clients saw) runs on alone;
    # the secondary keeps its last good state, stopped, until someone decides.
    assert_waits_for_decision(qs, sec, "corrupted")
    assert qp.wait_event("COLO_EXIT", timeout=10)["data"] == {"mode": "primary", "reason": "error"}
    assert qp.execute("query-status")["return"]["status"] == "running"
    n = len(counters(pri))
    wait_for(lambda: len(counters(pri)) > n + 3, what="the primary's guest to run on")
    assert_guest_stopped(sec)


def test_refused_record_is_refused_before_vmstate_received(colo_pair):
    """A record that passes the stream checks but does not decode: the secondary
    refuses the checkpoint before vmstate-received, so the primary never
    releases output on it, and keeps its own state (rolled back) while it waits."""
    pri, qp, sec, qs = colo_pair(delay=60000)
    time.sleep(0.3)
    before = checkpoints(qs)
    assert qp.execute("x-colo-test", {"refuse-next-checkpoint": True}) == {"return": {}}
    qp.execute("x-colo-checkpoint")
    assert_waits_for_decision(qs, sec, "vCPU state was refused")
    assert checkpoints(qs) == before
    assert qp.wait_event("COLO_EXIT", timeout=10)["data"] == {"mode": "primary", "reason": "error"}
    st = qp.execute("query-colo-status")["return"]
    assert "waiting for vmstate-received" in st.get("x-error", ""), st
    assert qp.execute("query-status")["return"]["status"] == "running"
    n = len(counters(pri))
    wait_for(lambda: len(counters(pri)) > n + 3, what="the primary's guest to run on")
    # Told to take over, the secondary runs from its own state.
    assert qs.execute("x-colo-lost-heartbeat") == {"return": {}}
    n = len(counters(sec))
    wait_for(lambda: len(counters(sec)) > n + 3, what="the secondary's guest to run on")


@pytest.mark.parametrize("side,step", [("primary", "prepare"), ("primary", "committed"),
                                       ("secondary", "prepare"), ("secondary", "applied")])
def test_a_failing_participant_ends_the_checkpoint(colo_pair, side, step):
    """A checkpoint participant (network proxy, disk) whose step fails: the
    checkpoint is aborted and COLO ends by the usual rules. The primary serves on
    alone; a secondary that failed before the commit point (or whose primary
    failed) keeps its last checkpoint and waits for a decision; one that failed
    after applying (applied) can never run: the takeover is refused."""
    pri, qp, sec, qs = colo_pair(delay=60000, check_ram=True)
    qp.execute("x-colo-checkpoint")
    wait_for(lambda: counted_at_least(qs, {"checkpoints": 0, "ram-checks": 0}, 1),
             what="a whole checked checkpoint")
    base = qs.execute("query-colo-stats")["return"]
    q = qp if side == "primary" else qs
    assert q.execute("x-colo-test", {"fail-step": step}) == {"return": {}}
    qp.execute("x-colo-checkpoint")
    assert qp.wait_event("COLO_EXIT", timeout=10)["data"] == {"mode": "primary", "reason": "error"}
    n = len(counters(pri))
    wait_for(lambda: len(counters(pri)) > n + 3, what="the primary's guest to run on")
    if side == "primary":
        assert "test hook" in qp.execute("query-colo-status")["return"]["x-error"]
    if (side, step) == ("secondary", "applied"):
        ev = qs.wait_event("COLO_EXIT", timeout=10)
        assert ev["data"] == {"mode": "secondary", "reason": "error"}, ev
        r = qs.execute("x-colo-lost-heartbeat")
        assert "cannot take over: test hook failed to apply the checkpoint" in r["error"]["desc"], r
        assert qs.execute("query-status")["return"]["status"] == "paused"
        assert_guest_stopped(sec)
        return
    why = "test hook cannot take part" if (side, step) == ("secondary", "prepare") else ""
    assert_waits_for_decision(qs, sec, why)
    # Applied whole (the primary failed after vmstate-received) or not at all.
    st = qs.execute("query-colo-stats")["return"]
    if step == "committed":
        assert st["ram-checks"] == base["ram-checks"] + 1, (base, st)
    else:
        assert st["checkpoints"] == base["checkpoints"], (base, st)
    assert qs.execute("x-colo-lost-heartbeat") == {"return": {}}
    n = len(counters(sec))
    wait_for(lambda: len(counters(sec)) > n + 3, what="the secondary's guest to run on")


def test_fail_step_names_the_steps(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=60000)
    r = qp.execute("x-colo-test", {"fail-step": "start"})
    assert "no step 'start' (prepare, committed, applied)" in r["error"]["desc"], r


def slow_checkpoint(qp, qs, delay_ms=2500):
    """Starts a checkpoint whose end the secondary delays; returns once it is under way
    (the secondary has checked the RAM, then waits delay_ms before vmstate-loaded)."""
    assert qs.execute("x-colo-test", {"apply-delay-ms": delay_ms}) == {"return": {}}
    n = qs.execute("query-colo-stats")["return"]["ram-checks"]
    done = checkpoints(qs)
    qp.execute("x-colo-checkpoint")
    wait_for(lambda: qs.execute("query-colo-stats")["return"]["ram-checks"] > n,
             what="the slow checkpoint to start")
    assert qs.execute("x-colo-test", {"apply-delay-ms": 0}) == {"return": {}}
    return done


def stays_stopped_after_the_checkpoint(pri, qp, qs, done):
    """The checkpoint ends and the VM stays stopped (the monitor's stop); cont runs it, in COLO."""
    wait_for(lambda: checkpoints(qs) > done, what="the checkpoint to end")
    assert qp.execute("query-status")["return"]["status"] == "paused"
    assert_guest_stopped(pri)
    assert qp.execute("cont") == {"return": {}}
    n = len(counters(pri))
    wait_for(lambda: len(counters(pri)) > n + 3, what="the primary's guest to run again")
    assert in_colo(qp, qs)


def test_stop_during_a_checkpoint_outlives_it(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=60000, check_ram=True)
    time.sleep(0.3)
    done = slow_checkpoint(qp, qs)
    assert qp.execute("stop") == {"return": {}}
    assert qp.wait_event("STOP", timeout=10)
    stays_stopped_after_the_checkpoint(pri, qp, qs, done)


def test_cont_during_a_checkpoint_of_a_stopped_vm_is_refused(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=60000, check_ram=True)
    time.sleep(0.3)
    assert qp.execute("stop") == {"return": {}}
    done = slow_checkpoint(qp, qs)
    # The state is being copied: running the guest now would change it.
    assert "error" in qp.execute("cont")
    stays_stopped_after_the_checkpoint(pri, qp, qs, done)


@pytest.mark.parametrize("phase", ["precopy", "request", "ram", "device", "received"])
def test_primary_lost_in_each_checkpoint_phase(colo_pair, phase):
    """The primary dies in the middle of a checkpoint (a test hook stalls it there).
    The secondary stops and waits (one copy). The checkpoint is applied whole if
    the secondary had sent vmstate-received, else not at all: its RAM is as it was
    when the checkpoint stopped it. After the decision the guest runs on."""
    pri, qp, sec, qs = colo_pair(cmdline="app=dirty,pages=512,period=10", delay=60000, check_ram=True)
    qp.execute("x-colo-checkpoint")
    wait_for(lambda: counted_at_least(qs, {"checkpoints": 0, "ram-checks": 0}, 1),
             what="a whole checked checkpoint")
    base = qs.execute("query-colo-stats")["return"]
    time.sleep(scaled(0.5))  # the guest dirties enough pages for a pre-copy round
    assert qp.execute("x-colo-test", {"stall-in": phase}) == {"return": {}}
    qp.execute("x-colo-checkpoint")
    wait_for(lambda: f"stalls in phase {phase}" in pri.stderr(), what=f"the primary to stall in {phase}")
    before = None
    if phase in ("request", "ram", "device"):  # the checkpoint has stopped the secondary
        wait_for(lambda: qs.execute("query-status")["return"]["status"] == "paused",
                 what="the checkpoint to stop the secondary")
        before = qs.execute("x-query-ram-hash")["return"]["hash"]
    pri.proc.send_signal(signal.SIGKILL)
    pri.proc.wait()
    assert_waits_for_decision(qs, sec, "")
    st = qs.execute("query-colo-stats")["return"]
    assert st["ram-checks"] - base["ram-checks"] == (1 if phase == "received" else 0), (base, st)
    if before:
        assert qs.execute("x-query-ram-hash")["return"]["hash"] == before  # nothing half-applied
    assert qs.execute("x-colo-lost-heartbeat") == {"return": {}}
    n = len(counters(sec))
    wait_for(lambda: len(counters(sec)) > n + 3, what="the secondary's guest to run on")


def test_stall_in_names_the_phases(colo_pair):
    pri, qp, sec, qs = colo_pair(delay=60000)
    r = qp.execute("x-colo-test", {"stall-in": "nowhere"})
    assert "no phase 'nowhere'" in r["error"]["desc"], r
    wait_for(lambda: qp.execute("query-status")["return"]["status"] == "running",
             what="the primary to run")
    running = qp.execute("x-query-ram-hash")
    assert "must be stopped" in running["error"]["desc"], running


def test_a_guest_that_ends_ends_both_sides(colo_pair):
    """The protected guest exits by itself: the primary tells the secondary, which
    ends its VM the same way (same exit status, SHUTDOWN with the guest's reason)
    instead of waiting for a takeover decision. The secondary's process is held
    stopped meanwhile (no checkpoint is due, the peer timeout is long), so only the
    primary's guest reaches its end; the message waits in the socket."""
    pri, qp, sec, qs = colo_pair("app=dirty,pages=16,period=10,stop=1500", delay=600000,
                                 peer_timeout=600000)
    # The primary's guest runs in COLO (it waits for the secondary's checkpoint-ready).
    start = int(re.findall(r"counter=(\d+)", pri.console())[-1])
    pri.wait_console(rf"counter={start + 5}\b")
    sec.proc.send_signal(signal.SIGSTOP)
    try:
        assert pri.wait_exit(timeout=60) == 0, pri.stderr()
    finally:
        sec.proc.send_signal(signal.SIGCONT)
    ev = qs.wait_event("SHUTDOWN", timeout=10)
    assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}, ev
    assert sec.wait_exit(timeout=10) == 0, sec.stderr()
    assert "waiting for" not in sec.stderr(), sec.stderr()


def test_lost_heartbeat_outside_colo(start_vm, tmp_path):
    vm = start_vm(["--kernel", GUEST, "--qmp", str(tmp_path / "q.sock"), "--cmdline", "app=hello,x=1"])
    vm.wait_exit()
    vm = start_vm(["--kernel", GUEST, "--qmp", str(tmp_path / "r.sock"), "--cmdline",
                   "app=dirty,pages=4,period=50"], name="b")
    q = QMP(str(tmp_path / "r.sock"))
    assert q.execute("x-colo-lost-heartbeat")["error"]["desc"] == "VM is not in COLO mode"
    assert q.execute("query-colo-status")["return"] == {
        "mode": "none", "last-mode": "none", "reason": "none", "x-failover-state": "none"}


@pytest.mark.parametrize("args,message", [
    (["primary", "--kernel", "k"], "lockstep primary needs --peer HOST:PORT"),
    (["secondary"], "lockstep secondary needs --listen HOST:PORT"),
    (["secondary", "--listen", "x:1", "--kernel", "k"], "lockstep secondary takes the guest"),
    (["run", "--kernel", "k", "--peer", "a:1"], "--peer belongs to `lockstep primary`"),
    (["primary", "--kernel", "k", "--peer", "nocolon"], "--peer nocolon: expected HOST:PORT"),
    (["primary", "--kernel", "k", "--peer", "a:1", "--checkpoint-delay", "5"], "--checkpoint-delay 5"),
    (["secondary", "--listen", "x:1", "--peer-timeout", "50"], "--peer-timeout 50: expected milliseconds"),
    (["run", "--kernel", "k", "--peer-timeout", "1000"], "--peer-timeout belongs to `lockstep primary`"),
    (["failover"], "usage: lockstep failover --qmp SOCKETPATH"),
    (["status", "--qmp"], "usage: lockstep status --qmp SOCKETPATH"),
])
def test_pair_command_errors(args, message):
    from harness import run_lockstep
    code, out, err = run_lockstep(args)
    assert code == 2, err
    assert message in err, err


def test_failover_command_needs_a_monitor(tmp_path):
    from harness import run_lockstep
    code, out, err = run_lockstep(["failover", "--qmp", str(tmp_path / "none.sock")])
    assert code == 1 and "none.sock: No such file or directory" in err, err
    (tmp_path / "plain").write_text("")
    code, out, err = run_lockstep(["status", "--qmp", str(tmp_path / "plain")])
    assert code == 1 and "plain:" in err, err


def test_failover_and_status_commands(colo_pair, tmp_path):
    from harness import run_lockstep
    pri, qp, sec, qs = colo_pair(delay=60000)  # no checkpoint pauses the guests meanwhile
    wait_for(lambda: qs.execute("query-status")["return"]["status"] == "running", what="the SVM to run")
    code, out, err = run_lockstep(["status", "--qmp", str(tmp_path / "s.sock")])
    assert code == 0, err
    st = json.loads(out)
    assert st["colo"]["mode"] == "secondary" and st["vm"]["status"] == "running", st
    pri.proc.send_signal(signal.SIGKILL)
    ev = qs.wait_event("COLO_EXIT", timeout=10)
    assert ev["data"].get("x-waiting-for-decision") is True, ev
    code, out, err = run_lockstep(["failover", "--qmp", str(tmp_path / "s.sock")])
    assert code == 0 and "takes over" in out, err
    wait_for(lambda: qs.execute("query-status")["return"]["status"] == "running", what="the takeover")
    code, out, err = run_lockstep(["failover", "--qmp", str(tmp_path / "s.sock")])
    assert code == 1 and "VM is not in COLO mode" in err, err

