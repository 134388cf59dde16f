"""ParallelCluster configuration: render from templates and validate with ParallelCluster's schema."""
