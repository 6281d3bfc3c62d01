"""The artifact bundle (``model.runtime.bundle_format``) written from a trained model, and changed without
retraining.

    writer.py                ``build_bundle``: embed the database's views, export the graphs, index, calibrate
    indexing.py              the FAISS index plan, build and operating point
    reranking.py             the re-ranking weight and expected-error curve, chosen on held-out queries
    blazepose_assets.py      the BlazePose models from the pinned mediapipe wheel
    library_update.py        ``add_clips``, ``remove_clips``, ``copy_to_milvus``; ``library_bundle.py`` and
                             ``library_index.py`` their bundle and index sides
    milvus_collection.py     a bundle version's vectors in a Milvus collection
    commands.py              ``unihpr-build index | verify | weights``; ``library_commands.py`` ``add | remove |
                             to-milvus``; ``milvus_options.py`` the options they share
"""
