"""Network parts shared by several methods: ``nd`` (layers for any ``spatial_dims``), ``augment``
(differentiable augmentation, random erasing) and ``features`` (feature extractors for FID and perceptual
losses)."""
