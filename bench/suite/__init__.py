"""The parts of the benchmark suite; `bench/run.py` runs them and writes the report."""
