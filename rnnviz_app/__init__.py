"""The Streamlit app's glue, laid out by concern. Not installed: Streamlit puts the folder of
``streamlit_app.py`` on ``sys.path``, so the pages import ``rnnviz_app.<concern>.<module>``.

- ``sources``: where the numbers come from: ``source`` (the interface every page renders: a live
  source or an analysis bundle, and the sentence where one cannot compute a view),
  ``context.Loaded``, demos in ``loading``, own files, uploads, your own class in ``launched``,
  ``second_model``, bundles (``bundle_source``, ``bundle_view``, ``bundle_reads``), ``sequences``' traces.
- ``inputs``: what the user chooses (``sidebar``, ``bundle_sidebar``, ``page_pair`` for A and B).
  Every widget whose value lives in the link is bound by ``state.state_url.widget_key``.
- ``state``: session state and the URL (``state_url``), ``hashing``, the content-keyed cache
  (``compute``), ``prefetch`` and ``warm`` background work, ``page_boot``.
- ``views``: each page's body (``start_view``, ``trajectories_view``, ``saturation_view``,
  ``contributions_view``, ``whatif_view``, ``units_view``) and glue (``page_*``; ``page_start``,
  ``page_groups`` and ``page_scores`` ask the source), ``widgets``, ``play``, ``summary``,
  ``page_findings``, ``contribution_stack``, ``messages`` (plain sentences for failures) and ``text``.

Streamlit is imported here and in the modules; ``rnnviz_core`` never imports Streamlit.
"""
