"""Tests in a real browser (Debian Chromium + Playwright): the board and the notebook panel."""
