"""The vote count of TaskMessages: every voter decides alike, however its reads are cut."""

from __future__ import annotations

import random
from collections import Counter

import orjson
from maos.client._context_messages import VOTE_CONTENT_TYPE, _Inbox, _VoteRound
from maos.v1 import common_pb2, messages_pb2


def vote_id(n: int) -> str:
    return f"{n:026d}"  # ids sort like the service's ULIDs: in the order votes were accepted


def truth(votes: list[tuple[str, bytes]], quorum: int) -> bytes:
    first: dict[str, bytes] = {}
    for voter, value in votes:
        first.setdefault(voter, value)
        if len(first) == quorum:
            break
    tally = Counter(first.values())
    return min(tally, key=lambda v: (-tally[v], v))


def decide(votes: list[tuple[str, bytes]], me: int, quorum: int, rng: random.Random, batch: int) -> bytes:
    """Voter `me` (its vote is votes[me]) reads the others' votes in id order, in random cuts."""
    round_ = _VoteRound("t", quorum, (vote_id(me), *votes[me]))
    visible = me + 1  # our send returned: every earlier vote is committed
    read = 0
    while True:
        others = [i for i in range(visible) if i != me]
        chunk = others[read : read + batch]
        read += len(chunk)
        round_.absorb({vote_id(i): votes[i] for i in chunk})
        if len(chunk) < batch:
            round_.drained()
        outcome = round_.outcome()
        if outcome is not None:
            return orjson.dumps(outcome.value)
        visible = min(len(votes), visible + rng.randrange(0, 3))


def test_every_voter_computes_the_global_outcome() -> None:
    rng = random.Random(3)
    for _ in range(300):
        voters = [f"V{i}" for i in range(rng.randrange(2, 9))]
        rng.shuffle(voters)
        sequence = [(v, orjson.dumps(rng.choice(["a", "b", "c"]))) for v in voters]
        sequence += [(rng.choice(voters), b'"z"') for _ in range(rng.randrange(0, 3))]  # repeat votes do not count
        quorum = rng.randrange(1, len(voters) + 1)
        expected = truth(sequence, quorum)
        for me in range(len(voters)):
            assert decide(sequence, me, quorum, rng, batch=rng.choice([1, 2, 100])) == expected


def test_tie_breaks_on_the_smallest_serialisation() -> None:
    round_ = _VoteRound("t", 2, (vote_id(1), "V1", b'"b"'))
    round_.absorb({vote_id(0): ("V0", b'"a"')})
    round_.drained()
    outcome = round_.outcome()
    assert outcome is not None
    assert (outcome.value, outcome.tally, outcome.voters) == ("a", {'"a"': 1, '"b"': 1}, ("V0", "V1"))


def test_the_inbox_diverts_votes_and_drops_duplicates() -> None:
    inbox = _Inbox()

    def message(mid: str, data: object, content_type: str = "application/json") -> messages_pb2.Message:
        payload = common_pb2.Payload(data=orjson.dumps(data), content_type=content_type)
        return messages_pb2.Message(id=mid, payload=payload)

    vote = message("v", {"vote": "plan", "voter": "V2", "value": {"b": 1, "a": 0}}, VOTE_CONTENT_TYPE)
    fresh, ack = inbox.sort([message("m1", 1), vote], keep_aside=False)
    assert [m.id for m in fresh] == ["m1"] and ack == ["v"]
    assert inbox.votes == {"plan": {"v": ("V2", b'{"a":0,"b":1}')}}
    fresh, ack = inbox.sort([message("m1", 1), message("m2", 2)], keep_aside=True)
    assert fresh == [] and ack == ["m1"]  # m1 was returned already; m2 waits aside, unacknowledged
    assert inbox.sort([message("m2", 2)], keep_aside=False) == ([], [])  # a redelivery of the one aside
    assert [m.id for m in inbox.take_aside(10)] == ["m2"]
