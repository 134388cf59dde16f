"""vsrflow: video super-resolution from one laptop command to an AWS ParallelCluster workflow."""

__version__ = "0.1.0"
