"""Training UniHPR and the Martinez baseline: configuration, views, loop and run checkpoints.

    config.py                the typed ``TrainConfig`` (with ``AugmentConfig`` and ``EvalSettings``) and presets
    batches.py               views of mocap poses as the three modalities see them
    pose_augmentation.py     PoseAug-style changes of world poses
    detector_noise.py        the detector-like 2D noise model; ``detector_calibration.py`` fits it on real photos
    loop.py                  ``train_unihpr`` (align, then decode) and ``train_martinez``, resumable
    checkpoint.py            run checkpoints: ``model.nn.checkpoint`` plus the run's config and resume state
    commands.py              ``unihpr-build train | baselines | study | generalise | calibrate``
"""
