"""The foundation every skloop estimator builds on.

- :mod:`.params`: declarative hyper-parameter validation (constraint and applicability tables);
- :mod:`.data`: validation and preprocessing of batches of matrices and sequences;
- :mod:`.numerics`: norms and normalizations correct over the whole finite range (numpy);
- :mod:`.skorch`: the skorch net, batch iterator and callbacks shared by the torch estimators;
- :mod:`.estimator`: atomic fit, seeding, threads, training parameters, chunked inference;
- :mod:`.persistence`: the safe ``save``/``load`` file format.

Import direction: ``_core`` imports nothing else from skloop (``persistence`` looks the
estimator classes up lazily, at load time); every estimator family imports ``_core``.
"""
