"""Helpers about training rather than pruning.

`optimizer_state` carries an optimizer's slots across a change of model
shape; `replicas` makes a model that adds to its loss or rebuilds itself
behave under `tf.distribute` strategies (multi-worker fit included).
"""
