"""eldercare.heap: the survivors of each tick are frozen out of the full collections,
young cyclic garbage is still reclaimed, and a daily thaw reclaims the rest."""

from __future__ import annotations

import gc
import weakref

from eldercare import heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


def test_young_cyclic_garbage_is_reclaimed_and_survivors_are_frozen() -> None:
    enabled = gc.isenabled()
    gc.disable()  # nothing but settle() may collect during the test
    try:
        node, ref = cycle()
        del node  # garbage only a collection can find
        kept = Node()
        kept_ref = weakref.ref(kept)
        before = gc.get_freeze_count()
        heap.Settler(clock=lambda: 0.0).settle()
        assert ref() is None  # collected before the freeze, not frozen alive
        assert gc.get_freeze_count() > before  # what survived is frozen
        assert gc.is_tracked(kept)
        del kept
        assert kept_ref() is None  # a frozen object is still freed by its last reference
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def test_frozen_cyclic_garbage_waits_for_the_daily_thaw() -> None:
    enabled = gc.isenabled()
    gc.disable()
    now = [0.0]
    settler = heap.Settler(thaw_every_s=100.0, clock=lambda: now[0])
    try:
        holder = [cycle()]
        settler.settle()  # frozen, alive
        ref = holder.pop()[1]
        now[0] = 50.0
        settler.settle()
        gc.collect()
        assert ref() is not None  # garbage among frozen objects: no collection sees it
        now[0] = 100.0
        settler.settle()  # the thaw
        assert ref() is None
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
