"""The Panoptic v1 API, generated from protos/panoptic/v1 by `make protos`. Do not edit."""
