"""weightspace: training trajectories in the weight space of neural networks, and their analysis.

The core (spec, data, models, training, snapshots, analysis, claims, figures, report, presets)
imports no web, queue or database code; ``weightspace_app`` holds what the service and the
worker share.
"""
