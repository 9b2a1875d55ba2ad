"""Seed 001 (Viana et al. 2021): 3D f-AnoGAN with fine-tuning, and its 2D comparison (``spatial_dims`` 2).

``model`` (G, critic, E, losses of Eqs. 2–6), ``train`` (WGAN-GP → encoder → fine-tuning), ``method``
(the registry's :class:`~ctad_core.methods.base.Family`: spec, forward pass and score).
"""
