"""``vsrflow run`` over a directory (weights -> upscale -> evaluate, resumable): each step runs
isolated in its own child process (:mod:`.steps`), resume markers in :mod:`.markers`, the summary
table and JSON in :mod:`.summary`, the loop in :mod:`.runner`.
"""
