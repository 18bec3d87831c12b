"""What a session and the server keep: session state and the URL, content digests, the cache of
computations keyed by content, background prefetch and warm-up, deep links on a fresh server."""
