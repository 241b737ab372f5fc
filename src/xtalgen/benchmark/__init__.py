"""One benchmark for every generator: the same CSP or DNG protocol, targets, seeds and
evaluation for each, with its cost, in one table.

>>> from xtalgen.benchmark import BenchmarkConfig, run_benchmark
>>> result = run_benchmark(BenchmarkConfig(task="csp", dataset="perov5", n=50, k=5,
...                                        generators="substitution,perov5-csp-flow"))
>>> print(result.files["markdown"].read_text())
"""

from xtalgen.benchmark.generators import GeneratorEntry, available_generators
from xtalgen.benchmark.report import markdown_table
from xtalgen.benchmark.runner import BenchmarkConfig, BenchmarkResult, run_benchmark

__all__ = [
    "BenchmarkConfig",
    "BenchmarkResult",
    "GeneratorEntry",
    "available_generators",
    "markdown_table",
    "run_benchmark",
]
