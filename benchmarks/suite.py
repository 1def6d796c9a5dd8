"""Every row of BENCHMARKS.md, in one go (long: trains the baselines).

Usage: python -m benchmarks.suite
"""

from benchmarks import run, tool

ROWS = [
    ("resnet20", "baseline", None),
    ("resnet20", "l1", 0.5),
    ("resnet20", "l1", 0.33),
    ("vgg11", "baseline", None),
    ("vgg11", "l1", 0.5),
    ("vgg11", "l1", 0.33),
]


def main():
    tool.main([])
    for model, method, target in ROWS:
        run.run(model, method, target)


if __name__ == "__main__":
    main()
