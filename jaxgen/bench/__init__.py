"""The benchmarks behind `jaxgen bench activations|throughput|peers [--quick] --out DIR`.

- activations: every activation in the registry on gradient flow, dead and saturated units, held-out
  accuracy over seeds, and speed (measures: what it measures per layer; report: its verdicts and
  markdown; figures: its PNGs);
- uva (`--preset uva`): UvA Deep Learning tutorial 3's setting on Fashion-MNIST side by side with its
  published figures (uva_report: that report);
- throughput: training samples/s of every task against batch size, as `jaxgen train` runs it, and on
  training sets of 4,500 and 60,000 images (the speed and scratch memory must not depend on the size);
- peers: the whole training command against the loops it should match (peer_loops), side by side;
- common: what they all share: the report header, the `--out` check, strict JSON, the GEMM ceiling and the
  CLI's one-line summary.

Each benchmark module is imported on its own (`from jaxgen.bench import throughput`); this package imports
nothing. `jaxgen.bench` may use anything in jaxgen but the CLI and the lecture; nothing below it imports it.
"""
