"""The data the builder trains and evaluates on, each source read into the one format, ``MotionDatabase``.

    motion_database.py  ``MotionDatabase``: h36m17 poses in labelled clips, splits, atomic save and load
    bandai.py           the Bandai Namco archives -> the pose cache (``unihpr-build cache``)
    sample.py           the compact sample shipped in the repository (``unihpr-build sample``)
    extra_mocap.py      the extra real mocap through the ingestion path, and the training databases it joins
    h36m.py, h36m_cameras.py  Human3.6M (VideoPose3D npz) and its published cameras (``data/h36m_cameras.json``)
    labelled_photos.py, coco_keypoints.py  the real labelled photos and COCO-format label files
    pose_checks.py, pose_plots.py  sanity checks and pictures of a database (``unihpr-build show``)
"""
