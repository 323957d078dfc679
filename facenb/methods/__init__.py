"""Runnable face-reconstruction methods (numpy re-implementations of published inference code, no deep-learning
framework needed): :mod:`facenb.methods.tddfa_v2` (3DDFA_V2, MobileNetV1 x0.5)."""
