"""What the pages draw: each page's glue (``page_*``), charts and downloads, the play control,
findings in words, the model card, and failures as plain sentences."""
