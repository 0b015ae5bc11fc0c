"""restyle.reference: Gatys optimization and the classic CNN visualization suite.

One class per method, one call shape per kind of result:

* attributions (``attribution``: ``Occlusion``, ``Saliency``, ``GuidedBackprop``,
  ``IntegratedGradients``) answer "which pixels made this class?" through
  ``.attribute(inputs, target)``, as Captum's methods do;
* generators (``generate``: ``TargetedAttack``, ``DeepDream``) make a new image
  through ``.generate(inputs, ...)``;
* readers of the network compute without optimising: ``Activations.compute``,
  ``MaxPatches.find``, ``Embedding.embed``.
"""
