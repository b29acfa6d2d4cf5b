"""wganbook: the helper package of the executable book *Why Wasserstein GANs work*.

One module per idea:

- :mod:`wganbook.transport` -- exact optimal transport (W1), closed forms, c-transform, divergences
- :mod:`wganbook.data` -- 2-D toy samplers, image datasets and the seeding helper
- :mod:`wganbook.models` -- MLP and DCGAN-style generators and critics
- :mod:`wganbook.lipschitz` -- weight clipping, gradient/div penalties, Lipschitz measurements
- :mod:`wganbook.objectives` -- the registry of methods and their losses
- :mod:`wganbook.train` -- one training loop for every method
- :mod:`wganbook.metrics` -- Frechet distance, feature extractors, toy mode coverage
- :mod:`wganbook.bookkit.presets` -- per-chapter parameter presets and their validation
- :mod:`wganbook.lab.plotting` -- value surfaces, sample grids, curves, histograms
"""

__version__ = "0.1.0"
