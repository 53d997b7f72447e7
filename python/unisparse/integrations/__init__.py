"""Framework integrations. :mod:`unisparse.integrations.hf`: Hugging Face
transformers (``attn_implementation="unisparse"``)."""
