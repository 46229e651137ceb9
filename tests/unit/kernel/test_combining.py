"""shared.combining (the console's session checks and check-ins): one call for what
arrives while the previous call is on its way, each request its own answer, and a
failed call answered to every request in it - none left waiting, none sent twice.
Green threads, as under ``nameko run``; ``send`` stands for the RPC or the lookup."""
from __future__ import annotations

import eventlet
import eventlet.event
from shared.combining import Combiner
from shared.errors import NotFound, Unavailable


def _run(group, send, people):
    """Every person checks in at once; person -> result or the error raised."""
    out = {}

    def one(p):
        try:
            out[p] = group.submit(send, {"person_id": p, "token": "qs_" + p})
        except Exception as exc:  # noqa: BLE001 - the answer under test
            out[p] = exc
    pool = eventlet.GreenPool()
    for p in people:
        pool.spawn(one, p)
    with eventlet.Timeout(10):
        pool.waitall()
    return out


def test_each_request_gets_its_own_answer_and_arrivals_during_a_call_go_together():
    calls = []

    def send(entries):
        calls.append([e["person_id"] for e in entries])
        eventlet.sleep(0.01)  # the call on its way: the others queue meanwhile
        return [NotFound("not a member") if e["person_id"] == "p3" else dict(e) for e in entries]
    group = Combiner()
    people = ["p%d" % i for i in range(20)]
    out = _run(group, send, people)
    for p in people:
        if p == "p3":
            assert isinstance(out[p], NotFound)
        else:
            assert out[p] == {"person_id": p, "token": "qs_" + p}
    assert sorted(p for call in calls for p in call) == sorted(people)  # each sent once
    assert calls[0] == ["p0"] and len(calls) == 2 and group.largest == 19


def test_a_failed_call_answers_every_request_in_it_and_the_next_call_goes_on():
    calls = []

    def send(entries):
        calls.append(len(entries))
        eventlet.sleep(0.01)
        if len(calls) == 2:
            raise Unavailable()
        return [{"ok": True} for _ in entries]
    group = Combiner()
    first = _run(group, send, ["a%d" % i for i in range(10)])
    assert calls == [1, 9]
    assert first["a0"] == {"ok": True}
    assert all(isinstance(first["a%d" % i], Unavailable) for i in range(1, 10))
    again = _run(group, send, ["b0", "b1"])  # nothing left waiting or stuck sending
    assert again == {"b0": {"ok": True}, "b1": {"ok": True}}


def test_a_call_answering_the_wrong_number_fails_every_request_in_it():
    group = Combiner()
    out = _run(group, lambda entries: [], ["x", "y"])
    assert all(isinstance(v, RuntimeError) for v in out.values())


def test_at_most_max_batch_per_call():
    sizes = []

    def send(entries):
        sizes.append(len(entries))
        eventlet.sleep(0.01)
        return [{} for _ in entries]
    _run(Combiner(max_batch=4), send, ["m%d" % i for i in range(11)])
    assert max(sizes) <= 4 and sum(sizes) == 11




def test_the_next_call_goes_out_before_the_answered_requests_resume():
    """The next call is not held back while the requests of the one answered finish
    their own work (a console worker's response): its sender is woken before them.
    (The sender of a call resumes at once: the answer is in its own green thread.)
    Each call is answered when the test opens its gate - no timing involved."""
    log, gates = [], [eventlet.event.Event() for _ in range(3)]

    def send(entries):
        n = sum(1 for x in log if x.startswith("call"))
        log.append("call " + ",".join(e["person_id"] for e in entries))
        gates[n].wait()
        return [dict(e) for e in entries]
    group = Combiner()

    def one(p):
        group.submit(send, {"person_id": p})
        log.append("resumed " + p)

    def until(done):
        while not done():
            eventlet.sleep(0)
    pool = eventlet.GreenPool()
    pool.spawn(one, "p0")
    until(lambda: "call p0" in log)
    for p in ("p1", "p2", "p3"):
        pool.spawn(one, p)
    until(lambda: len(group._queue) == 3)
    gates[0].send()
    until(lambda: "call p1,p2,p3" in log)
    for p in ("p4", "p5"):
        pool.spawn(one, p)
    until(lambda: len(group._queue) == 2)
    gates[1].send()
    until(lambda: "call p4,p5" in log)
    gates[2].send()
    with eventlet.Timeout(10):
        pool.waitall()
    assert log[:4] == ["call p0", "resumed p0", "call p1,p2,p3", "resumed p1"]
    # p4 sends the third call before p2 and p3, answered by the second, resume
    assert log.index("call p4,p5") < min(log.index("resumed p2"), log.index("resumed p3"))
    assert sorted(x for x in log if x.startswith("resumed")) == ["resumed p%d" % i for i in range(6)]
