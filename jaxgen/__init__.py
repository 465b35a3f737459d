"""jaxgen: backpropagation, activations, autoencoders and GANs in JAX, measured."""

__version__ = "0.1.0"
