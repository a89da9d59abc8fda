"""Benchmarks (padding of batching strategies, training throughput); see docs/training_at_scale.md."""
