"""What a family member (or a worker) sees of who moved an alert and why (pure).

The centre (admin, supervisor, operator) and machine clients see an alert's history
whole: ``user:7`` acknowledged it with the note they typed. A family sees each
transition's states and time and who made it by role (``operator``, ``supervisor``,
``engine``, ``worker``), not a staff member's id, and only the notes the platform
wrote (``raised``, ``escalated to supervisor (level 1)``, ``wearer_cancelled``); the
notes the centre's staff type are their working notes (whom they rang, what a
neighbour said) and stay with the centre, as do the notes that name a worker. Before
2026-12-03 a family read both on ``GET /alerts/{id}`` and in live alert frames.

The roles come from the caller (``roles``: a user id's role, looked up in ``users``);
a user not found there is shown as ``staff``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from alerts.lifecycle import ESCALATED_NOTE
from api.order_view import WHOLE
from api.principal import Principal, Role

# the platform's own actors: no person behind them, their notes are the platform's
PLATFORM: Final = frozenset({"engine", "escalation", "dispatcher", "planner"})
_KINDS: Final = {"key": "integration"}  # an API key's id says nothing to a family


def _user_id(actor: object) -> int | None:
    """``user:7`` -> 7; anything else (another kind, ``user:x``) -> None."""
    if isinstance(actor, str) and actor.startswith("user:"):
        who = actor.removeprefix("user:")
        return int(who) if who.isdigit() else None
    return None


def user_ids(actors: Iterable[object]) -> list[int]:
    """The user ids among ``actors`` (``user:7`` -> 7), whose roles a view needs."""
    return sorted({i for i in map(_user_id, actors) if i is not None})


def _mine(me: Principal, actor: str) -> bool:
    """``actor`` is ``me``: as the API names them (``user:12``), or as dispatch does
    (``family:12``; a worker by worker id, ``worker:W1``, never by user id: a worker
    whose id happens to be another worker's user id is someone else)."""
    if actor == me.actor:
        return True
    if me.worker_id is not None and actor == f"worker:{me.worker_id}":
        return True
    return me.role is Role.FAMILY and me.user_id is not None and actor == f"family:{me.user_id}"


def actor_for(me: Principal, actor: object, roles: Mapping[int, str]) -> object:
    """``actor`` as ``me`` may see it: the platform's actors and oneself as they are,
    anyone else by role."""
    if me.role in WHOLE or not isinstance(actor, str) or actor in PLATFORM or _mine(me, actor):
        return actor
    kind = actor.partition(":")[0]
    if kind == "user":
        user = _user_id(actor)
        return "staff" if user is None else roles.get(user, "staff")
    return _KINDS.get(kind, kind)


def _platform_wrote(t: dict[str, Any]) -> bool:
    """Whether the platform wrote the note of ``t``: its own actors' notes, and an
    escalation's, whoever asked for it (the API's escalate drops the caller's note and
    the store writes ``escalated to ...``). An escalation is the one transition that
    keeps the state (``from_state == to_state``; published with kind ``escalated``),
    and its note is the store's own (``escalated to ...``): the notes the staff type come
    with a change of state (alerts.store's operator moves). Both are checked, so that a
    note added some day without a change of state is not shown by mistake."""
    if t.get("actor") in PLATFORM or t.get("kind") == "escalated":
        return True
    kept = t.get("from_state") is not None and t.get("from_state") == t.get("to_state")
    return kept and str(t.get("note", "")).startswith(ESCALATED_NOTE)


def transition_for(
    me: Principal, transition: dict[str, Any], roles: Mapping[int, str]
) -> dict[str, Any]:
    """One row of an alert's history (``at, from_state, to_state, actor, note``), or
    one published change of it (``AlertChange.to_json``, a live frame's data)."""
    if me.role in WHOLE:
        return transition
    actor = transition.get("actor")
    out = dict(transition)
    out["actor"] = actor_for(me, actor, roles)
    if "note" in out and not (_platform_wrote(transition) or _mine(me, str(actor))):
        out["note"] = ""
    return out
