"""Small study files shared by the study tests: seconds to run on the CPU."""

DIGITS_ACTIVATIONS = """
[study]
name = "tiny"

[data]
dataset = "digits"
eval_n = 40

[[models]]
name = "a"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "natural", epochs = 1, eval_n = 20 }

[lenses.activations]
"""
"""One natural small CNN on scikit-learn's digits and the activations lens."""

DIGITS_TWO_MODELS = DIGITS_ACTIVATIONS.replace(
    "\n[lenses.activations]",
    """
[[models]]
name = "b"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "natural", epochs = 1, eval_n = 20, seed = 1 }

[lenses.activations]""",
)
"""Two natural small CNNs (two seeds) on digits and the activations lens: two lens units."""
