"""Machine learning: options, data preparation, AutoML, back-ends, registry, notebooks.

Every ML library (flaml, xgboost, lightgbm, scikit-learn, skops, nbformat) is imported lazily,
inside the function that needs it, so `import lakesql` and plain SQL stay light.
"""
