"""Scorers: lighting/camera adherence, the variant scorer (identity, adherence, quality) and the
score records they yield. Importing this package loads no model library."""
