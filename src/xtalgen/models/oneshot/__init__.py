"""One-shot generators (VAE, GAN): a crystal from a latent vector in one pass. Not built yet."""
