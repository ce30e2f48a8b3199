"""The `web` portal: the HBS portal's web UI driven in a browser. Only driver.py imports Playwright (lazily)."""
