"""rnnviz_core: see inside recurrent networks that read a sequence and give one output."""
