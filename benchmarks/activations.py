"""Activation benchmark: gradient flow, dead/saturated units, accuracy over seeds, speed.

    python benchmarks/activations.py [--quick] --out DIR

The same code as `jaxgen bench activations [--quick] --out DIR` (jaxgen/bench/activations.py); writes
DIR/activations.json, DIR/activations.md and PNG figures. Quick mode: under two minutes on a 2-core CPU.
"""

import sys

from jaxgen import cli

if __name__ == "__main__":
    sys.exit(cli.main(["bench", "activations", *sys.argv[1:]]))
