"""The offline builder: real mocap in, a trained model and an artifact bundle out (``unihpr-build``).

One sub-package per stage, each with its command-line commands in ``commands.py`` beside it:

    ingest/      motion files of any known rig and format -> one ``MotionDatabase`` (``unihpr-build ingest``)
    datasets/    the data the builder trains and evaluates on: the Bandai cache and its shipped sample, the extra
                 mocap, Human3.6M, the labelled photos (``cache``, ``sample``, ``show``)
    training/    the typed train config, views and augmentation, the training loop, run checkpoints, the detector
                 noise model (``train``, ``baselines``, ``study``, ``generalise``, ``calibrate``)
    evaluation/  every protocol of the report (``evaluate``, ``conventions``)
    bundle/      the FAISS index, re-ranking calibration, the bundle writer, library changes and Milvus
                 (``index``, ``verify``, ``weights``, ``add``, ``remove``, ``to-milvus``)

Shared by all stages: ``config`` (``BuildPaths``: every path), ``errors`` (what the CLI reports as one line),
``atomic_files`` (temporary name, then rename), ``progress`` (bars and stage lines) and ``cli`` (``main``).
The networks, losses and checkpoint format are ``model.nn``; what the service runs is ``model.runtime``.
"""
