"""The model: what a claim is and how each id is spelled, defined once for every layer above."""
