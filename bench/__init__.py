"""Benchmarks of replicate_qwen_sdk; run with ``python -m bench``."""
