"""aiayn's benchmark suite (issue #6): `python -m benchmarks.run [--quick]`.

Not part of the installed package: it compares our model with `torch.nn.Transformer` as its
users write it (`baselines.py`, frozen), on identical batches, interleaved, in one process.
See docs/benchmarks.md for the results and the levers that were measured.
"""
