"""Benchmarks for tfprune; see BENCHMARKS.md and ../shared/BENCHMARK_PROTOCOL.md."""
