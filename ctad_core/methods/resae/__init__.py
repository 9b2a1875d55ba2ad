"""Seed 004 (Luo et al. 2023): the 3D residual AE (``resae``, ``resae_spatial``) and its post-processing.

``model`` (the network), ``train`` (L2, Adam with weight decay on kernels), ``method`` (the registry's
:class:`~ctad_core.methods.base.Family`: median filter, eroded mask, top-1 % score, s(u), min component size).
"""
