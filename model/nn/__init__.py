"""The torch layer: UniHPR's networks and losses, the Martinez baseline, the checkpoint format and ONNX export.
Only the builder imports it; the service runs the exported graphs (``model.runtime``). Public API:

- ``config``: ``ModelConfig`` (``EncoderConfig``, ``DecoderConfig``) and ``MartinezConfig``, torch-free;
- ``networks``: ``UniHPR``; ``martinez``: ``MartinezLifter``;
- ``losses``: ``SingularValueLoss``, ``PairwiseInfoNCE``, ``DecoderLoss``, ``singular_value_logits``;
- ``checkpoint``: ``save_checkpoint``, ``read_checkpoint``, ``load_unihpr``, ``load_martinez``, ``CheckpointError``;
- ``onnx_export``: ``export_model``, ``ExportParityError``.

Nothing is imported here, so ``model.nn.config`` stays torch-free and the training loop does not load ONNX
Runtime with the networks.
"""
