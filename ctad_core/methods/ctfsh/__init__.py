"""Seed 002 (CTFSH 2022): 3D AE / VAE with L1, L1 + MS-SSIM (reduced-scale when small) and ACAI; 12 variants.

``model`` (networks, MS-SSIM, losses, I and F scores), ``train`` (AE/VAE + ACAI critic, F-score Gaussian),
``method`` (the registry's :class:`~ctad_core.methods.base.Family`).
"""
