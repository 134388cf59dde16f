"""The chunked job: identity, state, spec, layout, manifest, plan, chunk I/O, stages, executors.

Submodules import lazily-heavy dependencies only where they need them; :mod:`.identity` and
:mod:`.state` are standard library only, so the Lambda package can use them.
"""
