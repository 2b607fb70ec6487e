"""Built-in agents: real work in pure Python, so demos and benchmarks do honest computation.

echo         returns its input (the no-op for benchmarks)
analyst      statistics over a CSV / JSON / JSONL data shard
coordinator  pools its dependencies' analyst results into one report
"""
