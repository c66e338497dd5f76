"""Osteo EDC's federated training on Flower.

The coordinator (``server_app``) aggregates; each hospital's ClientApp
(``client_app``) trains with the ``osteo-edc`` binary on its own cases. Only
weights (safetensors, checked by ``weights``) and a small metric record
leave a hospital.
"""
