"""Analyses of a trained model at decoding time (Wu et al. §2.3.3: top-k singular values)."""
