"""Seed 000 (Walluscheck et al. 2024): FastGAN ensemble, encoder, latent restoration, majority vote.

``model`` (G, D, E), ``losses`` (hinge, decoder and reconstruction losses), ``train`` (GAN and encoder
ensembles, ``gan/`` and ``encoder/`` with ``ensemble.json``), ``restore`` (latent restoration, Eq. 4),
``ensemble`` (residuals, members), ``method`` (scoring val/test slices), ``figures``.
"""
