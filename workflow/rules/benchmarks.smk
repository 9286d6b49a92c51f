# Stage: benchmarks (placeholder until its issue lands).
BENCHMARK_TARGETS = []
