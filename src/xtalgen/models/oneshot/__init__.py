"""One-shot generators: a crystal from a latent vector.

* :mod:`xtalgen.models.oneshot.vae` (family ``"vae"``): the CDVAE-style variational autoencoder
  (model: :mod:`xtalgen.models.oneshot.vae_model`); its decoder is the iterative flow model
  conditioned on z.
* :mod:`xtalgen.models.oneshot.gan` (family ``"gan"``): a WGAN-GP whose generator writes a padded
  crystal in one pass (networks: :mod:`xtalgen.models.oneshot.gan_nets`) and whose critic is the
  shared periodic backbone.
"""
