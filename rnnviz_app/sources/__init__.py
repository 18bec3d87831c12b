"""Where the numbers come from: the loaded model and data (:class:`~rnnviz_app.sources.context.Loaded`),
the shipped demos, the user's own files and uploads, the user's own model class started by
``rnnviz app`` / ``rv.show``, a second model, and analysis bundles; traces of the loaded sequences."""
