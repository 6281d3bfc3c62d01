"""The motion-search protocol (issue: motion search): ``protocol.motion_search_protocol`` builds the queries
(``queries``), the library and its index (``library``), runs UniHPR's motion search and the baselines (``methods``),
and scores them by label and by the aligned 3D error (``aligned_error``) against the cached oracle (``oracle``)."""
