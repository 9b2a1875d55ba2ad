"""ctad_core: the package behind the ctad workbook for unsupervised anomaly detection in head CT.

All logic lives here; the notebooks in ``notebooks/`` orchestrate, plot and explain.
"""

__version__ = "0.1.0"
