"""restyle.reference: Gatys optimization and the classic CNN visualization suite.

One class per method, built on what stays fixed between calls (a model, a
layer, a config), and one call shape per kind of result:

* generators make an image through
  ``.generate(inputs, target, *, seed=0, progress=True, callback=None) -> Result``
  (``method``: the ``ImageGenerator`` protocol and ``Result``): ``gatys.StyleTransfer``,
  ``gatys.TextureSynthesis``, ``inversion.FeatureInversion``,
  ``featurevis.ClassVisualization``, ``generate.TargetedAttack``,
  ``generate.FoolingImage``, ``generate.DeepDream``;
* attributions (``attribution``: ``Occlusion``, ``Saliency``, ``GuidedBackprop``,
  ``IntegratedGradients``) answer "which pixels made this class?" through
  ``.attribute(inputs, target)``, as Captum's methods do;
* readers of the network compute without optimising: ``Activations.compute``,
  ``MaxPatches.find``, ``Embedding.embed``.

``viz`` draws each method's figure (what ``restyle viz`` writes) and
``gallery`` renders them all into ``docs/reference.md``.
"""
