"""Trains a churn classifier with scikit-learn: a random forest on generated customer
features, refit round after round as in a hyper-parameter search.

The time is in the forest's compiled tree building (sklearn's Cython): model compute.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402

from _timing import Clock, parse_args  # noqa: E402


def main():
    args = parse_args(__doc__)
    x, y = make_classification(n_samples=4000, n_features=20, n_informative=8,
                               random_state=0)
    clock = Clock()
    fits = 0
    scores = []
    while clock.elapsed() < args.duration:
        with clock("model"):
            forest = RandomForestClassifier(n_estimators=10, max_depth=8 + fits % 4,
                                            random_state=fits, n_jobs=1)
            forest.fit(x[:3000], y[:3000])
            scores.append(forest.score(x[3000:], y[3000:]))
        fits += 1
    clock.write(args.truth, expect="model", fits=fits, accuracy=round(float(np.mean(scores)), 3))


if __name__ == "__main__":
    main()
