"""Faces: detection, identity encoders (dlib, insightface) and their registry, face quality,
group assignment and threshold calibration. Importing this package loads no model library."""
