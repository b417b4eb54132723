"""A PyTorch companion to Zhou, Lan, Liu and Yosinski, "Deconstructing Lottery Tickets: Zeros,
Signs, and the Supermask" (NeurIPS 2019): every mask criterion, mask-1 and mask-0 action and
supermask experiment of the paper, on populations of networks trained as one computation."""

__version__ = "0.1.0"
