"""The Streamlit app's glue, one module per concern. Not installed: Streamlit puts the folder of
``streamlit_app.py`` on ``sys.path``, so the pages import ``rnnviz_app.<module>``.

- ``hashing``: content digests that see every byte (cache keys).
- ``messages``: plain sentences for failures (never a traceback).
- ``state_url``: session state, widget keys and the URL (query parameters).
- ``context``: the ``Loaded`` model/data every page works on, and the target choice.
- ``uploads``: the upload store and the cached readers of uploaded bytes.
- ``loading``: demos, own files, building and resolving the ``Loaded`` context.
- ``compute``: computation cached under the loaded content hashes.
- ``widgets``: shared widgets (charts with cached specs, CSV downloads).
- ``summary``: predictions and the start page's model card.
- ``sequences``: traces, layer choices and the A/B sequence pickers' data.
- ``second_model``: the reproducibility check against a second uploaded model.
- ``page_saturation``, ``page_contributions``: glue of those pages.

Streamlit is imported here and in the modules; ``rnnviz_core`` never imports Streamlit.
"""
