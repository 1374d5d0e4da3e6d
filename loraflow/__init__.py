"""loraflow: durable LoRA training on Temporal."""
