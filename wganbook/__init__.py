"""wganbook: the helper package of the executable book *Why Wasserstein GANs work*.

One idea per module, in layers: each layer imports only from the layers listed before it
(the foundation, the maths, the GAN parts, ``train``, ``lab``, ``bookkit``, the command line).

The foundation:

- :mod:`wganbook._util` -- the one set of argument checks (parameter specs, ``check_value``), the one atomic write, ``jsonable``

The maths:

- :mod:`wganbook.transport` -- exact optimal transport: ``w1`` (POT, differentiable), ``w1_1d``, cost matrices, the closed forms of chapter 1 (parallel lines, shifts), histogram divergences
- :mod:`wganbook.duality` -- Kantorovich duality: optimal potentials, the Kantorovich–Rubinstein potential, the c-transform, the (c, ε)-transform and its checks
- :mod:`wganbook.batchw1` -- batch-W1 estimators: copies, mean image, k-means centroids, blur, Sinkhorn divergence, sliced W1, the paradox sweep
- :mod:`wganbook.divergence` -- the Wasserstein divergence W_{k,p} in closed form on the line, sampling-strategy densities, the published penalty variants
- :mod:`wganbook.likelihood` -- maximum likelihood on data near a line: ``gaussian_kl``, ``line_kl``, ``ml_noise_width``
- :mod:`wganbook.dirac` -- the Dirac-GAN: zero- and one-centred penalties in two parameters

The GAN parts:

- :mod:`wganbook.data` -- seeding, 2-D toy samplers, image datasets (``digits`` offline; MNIST, Fashion-MNIST, CIFAR-10 via torchvision)
- :mod:`wganbook.models` -- MLP and DCGAN-style generators and critics (LayerNorm / spectral-norm options)
- :mod:`wganbook.lipschitz` -- weight clipping, gradient and div penalties, sampling strategies, Lipschitz measurements, spectra and stable rank
- :mod:`wganbook.objectives` -- the ``METHODS`` registry with the papers' defaults, critic and generator losses, optimisers
- :mod:`wganbook.metrics` -- Fréchet distance, Inception and classifier features, sample quality and its real-data reference, toy mode coverage
- :mod:`wganbook.schema` -- every named parameter (training settings and chapter knobs) with its type and allowed values

``wganbook.train``: training:

- :mod:`wganbook.train.config` -- ``TrainConfig`` (checked once, from the schema) and ``TrainResult``
- :mod:`wganbook.train.loop` -- ``train``: the configuration resolved once, then one small loop for every method
- :mod:`wganbook.train.callbacks` -- the loop's callbacks: exact-W1 tracking, metric evaluation, checkpoints, progress
- :mod:`wganbook.train.history` -- the per-step recorder and divergence guard, statistics of a history (late mean, plateau change)
- :mod:`wganbook.train.checkpoint` -- checkpoints: bit-identical resume, run folders named by their configuration, safe output paths
- :mod:`wganbook.train.critic` -- ``fit_critic`` (a critic against fixed data) and ``best_response`` (a generator against a frozen critic)

``wganbook.lab``: the chapters' experiments:

- :mod:`wganbook.lab.sweeps` -- the grid runner ``run_grid``, the worker pool ``map_runs``, summaries and Markdown tables
- :mod:`wganbook.lab.cluster` -- runs on a Dask cluster: the scheduler (``WGANBOOK_SCHEDULER``) checked before any run, each run one task, a run whose worker died resumed
- :mod:`wganbook.lab.plotting` -- value surfaces, sample grids, training curves, weight and gradient histograms
- :mod:`wganbook.lab.gaussians1d` -- WGAN Figure 2: two Gaussians on the line, the optimal discriminator, critic profiles
- :mod:`wganbook.lab.distances` -- chapter 1: sample W1 of the parallel lines, histogram estimates of the divergences, gradient probes
- :mod:`wganbook.lab.kantorovich` -- chapter 2: a neural critic measured against the Kantorovich potential
- :mod:`wganbook.lab.critics` -- chapters 3 and 4: static critics against a fixed generator, method variants, critic overfitting
- :mod:`wganbook.lab.clipping` -- chapter 3: the clipped critic's summary, loss against quality, the best response to a frozen critic
- :mod:`wganbook.lab.penalty` -- chapter 4: penalty settings, estimate/exact ratio curves, the toy GAN's summary
- :mod:`wganbook.lab.wgandiv` -- chapter 5: WGAN-GP and WGAN-div with each sampling strategy, their summaries, the published tables
- :mod:`wganbook.lab.paradox` -- chapter 6: exact-W1 generators, critics' estimates against exact W1, the batch-W1 paradox on images
- :mod:`wganbook.lab.groundtruth` -- chapter 6's ground truth: critics trained on the digits and their translate, whose W1 is the norm of the shift
- :mod:`wganbook.lab.robustness` -- chapter 7: the robustness grid (methods x SNGAN's optimiser settings x seeds) on a toy and on the 8x8 digits, trained as one batched ensemble per seed; failure rates and the constraint's effect
- :mod:`wganbook.lab.schematics` -- pictures of the intuition: W1 as moving sand with its optimal plan (ch. 1), discriminator against critic (ch. 2), three ways to a Lipschitz critic (ch. 4), what a trained critic tracks (ch. 6)
- :mod:`wganbook.lab.interactive` -- figures a reader moves in the static page (precomputed frames, offline): a θ slider over the parallel lines (ch. 1), a λ slider for the penalised critic's slope (ch. 4)

``wganbook.bookkit``: the book's machinery:

- :mod:`wganbook.bookkit.presets` -- each chapter's ``quick``/``full`` presets and ``validate``, the one check of a chapter's parameters
- :mod:`wganbook.bookkit.grids` -- the declarations' parts: a ``Grid`` (one ``run_grid`` call) and ``Runs`` (runs made otherwise)
- :mod:`wganbook.bookkit.grids.ch03` -- chapter 3's training runs, declared once (read by the notebook and the run plan)
- :mod:`wganbook.bookkit.grids.ch04` -- chapter 4's training runs, declared once
- :mod:`wganbook.bookkit.grids.ch05` -- chapter 5's training runs, declared once
- :mod:`wganbook.bookkit.grids.ch06` -- chapter 6's training runs, declared once
- :mod:`wganbook.bookkit.grids.ch07` -- chapter 7's runs (the robustness grid on a toy and on the digits), declared for the run plan
- :mod:`wganbook.bookkit.chapters` -- every chapter's declaration, ``grid()`` and the run plan ``RUN_PLAN``, read from the declarations
- :mod:`wganbook.bookkit.toc` -- the chapter notebooks of a book folder, their keys and parameters cells
- :mod:`wganbook.bookkit.digest` -- a chapter's scoped digest (its code cells and the modules it imports) and ``python -m wganbook stale``
- :mod:`wganbook.bookkit.claims` -- ``claim``, ``report`` (named, checked claims of the text) and the ledger (``python -m wganbook claims``)
- :mod:`wganbook.bookkit.notebook` -- notebook set-up and ``glue``
- :mod:`wganbook.bookkit.runner` -- papermill reruns of the whole book (``python -m wganbook book``)

The command line:

- :mod:`wganbook.__main__` -- ``python -m wganbook`` / ``wganbook``: ``train``, ``book``, ``claims``, ``stale``
"""

__version__ = "0.1.0"
