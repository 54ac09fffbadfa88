"""Machine learning: options, data preparation, AutoML, back-ends, registry, notebooks.

Every ML library (flaml, xgboost, lightgbm, scikit-learn, skops, nbformat) is imported lazily,
inside the function that needs it, so `import lakesql` and plain SQL stay light.
"""

import os

# OpenMP threads of xgboost, lightgbm and scikit-learn sleep instead of spinning while they wait.
# On a busy laptop spinning threads stall each other (a 10 s TRAIN took 13-28 s with four busy
# processes beside it, 11-18 s with this). Read by each OpenMP runtime when it loads, so it only
# applies when lakesql loads those libraries first, and never overrides the user's choice.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
