"""The chunked-job workflow (:mod:`vsrflow.workflow.job`): one job split into frame-exact chunks
that run here or as a Slurm chain. The directory batch runner is :mod:`vsrflow.batch`.
"""
