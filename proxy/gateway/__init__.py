"""The request path every model call takes, stage by stage (pipeline.py), and its typed per-request observation."""
