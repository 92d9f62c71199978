"""`tristudio bench ...` measurements. One module per benchmark, each with

    TITLE: str
    def run(device: str = "auto", quick: bool = False) -> list[dict]   # one dict per table row

Rows are printed as a rich table and written as JSON by `tristudio.core.bench.common.report`.
"""

BENCHMARKS = ["render", "generator", "train", "prior", "sds", "viewer", "representations"]
